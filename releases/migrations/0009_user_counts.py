"""Users counted by their latest hour: ``SessionUserLast`` (per environment), ``ReleaseUserSeen``
and ``ReleaseUserLast`` (all environments of a release), docs/health.md §9.3.

The counts are filled from the stored ``SessionUserSeen`` rows, one ``INSERT … SELECT … GROUP
BY`` per table (the same SQL on PostgreSQL and SQLite). On PostgreSQL the ``ALTER TABLE`` of
``SessionUserSeen`` holds its lock until the migration commits, so no envelope changes the
rows being counted meanwhile; envelopes stored afterwards by code that predates this migration
would not move the counts, so stop the old workers before migrating (``make serve`` migrates
before it starts gunicorn).
"""

import django.db.models.deletion
from django.db import migrations, models


def count_users(apps, schema_editor):
    quote = schema_editor.quote_name

    def table(name):
        return quote(apps.get_model("releases", name)._meta.db_table)

    seen, release_seen = table("SessionUserSeen"), table("ReleaseUserSeen")
    with schema_editor.connection.cursor() as cursor:
        # A did's latest (crashed) hour of a release is its latest over the environments.
        cursor.execute(
            f"INSERT INTO {release_seen} (project_id, release_id, did, last_hour, last_crashed_hour) "
            f"SELECT project_id, release_id, did, MAX(last_hour), MAX(last_crashed_hour) "
            f"FROM {seen} GROUP BY project_id, release_id, did"
        )
        for source, counts, groups in (
            (seen, table("SessionUserLast"), "project_id, release_id, environment_id"),
            (release_seen, table("ReleaseUserLast"), "project_id, release_id"),
        ):
            # Each row counts one user at its latest hour, one crashed user at its latest
            # crashed hour.
            cursor.execute(
                f"INSERT INTO {counts} ({groups}, hour, users, crashed) "
                f"SELECT {groups}, hour, SUM(users), SUM(crashed) FROM ("
                f"SELECT {groups}, last_hour AS hour, 1 AS users, 0 AS crashed FROM {source} "
                f"UNION ALL SELECT {groups}, last_crashed_hour, 0, 1 FROM {source} "
                f"WHERE last_crashed_hour IS NOT NULL"
                f") AS latest GROUP BY {groups}, hour"
            )


class Migration(migrations.Migration):

    dependencies = [
        ('releases', '0008_session_duration_buckets'),
    ]

    operations = [
        migrations.AddField(
            model_name='sessionuserseen',
            name='prev_last_crashed_hour',
            field=models.DateTimeField(blank=True, null=True),
        ),
        migrations.AddField(
            model_name='sessionuserseen',
            name='prev_last_hour',
            field=models.DateTimeField(blank=True, null=True),
        ),
        migrations.CreateModel(
            name='ReleaseUserLast',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                ('hour', models.DateTimeField()),
                ('users', models.BigIntegerField(default=0)),
                ('crashed', models.BigIntegerField(default=0)),
                ('project', models.ForeignKey(db_index=False, on_delete=django.db.models.deletion.CASCADE, related_name='+', to='releases.project')),
                ('release', models.ForeignKey(db_index=False, on_delete=django.db.models.deletion.CASCADE, related_name='+', to='releases.release')),
            ],
            options={
                'constraints': [models.UniqueConstraint(fields=('release', 'project', 'hour'), name='unique_release_user_last')],
            },
        ),
        migrations.CreateModel(
            name='ReleaseUserSeen',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                ('did', models.UUIDField()),
                ('last_hour', models.DateTimeField()),
                ('last_crashed_hour', models.DateTimeField(blank=True, null=True)),
                ('prev_last_hour', models.DateTimeField(blank=True, null=True)),
                ('prev_last_crashed_hour', models.DateTimeField(blank=True, null=True)),
                ('project', models.ForeignKey(db_index=False, on_delete=django.db.models.deletion.CASCADE, related_name='+', to='releases.project')),
                ('release', models.ForeignKey(db_index=False, on_delete=django.db.models.deletion.CASCADE, related_name='+', to='releases.release')),
            ],
            options={
                'constraints': [models.UniqueConstraint(fields=('release', 'project', 'did'), name='unique_release_user_seen')],
            },
        ),
        migrations.CreateModel(
            name='SessionUserLast',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                ('hour', models.DateTimeField()),
                ('users', models.BigIntegerField(default=0)),
                ('crashed', models.BigIntegerField(default=0)),
                ('environment', models.ForeignKey(db_index=False, on_delete=django.db.models.deletion.CASCADE, related_name='+', to='releases.environment')),
                ('project', models.ForeignKey(db_index=False, on_delete=django.db.models.deletion.CASCADE, related_name='+', to='releases.project')),
                ('release', models.ForeignKey(db_index=False, on_delete=django.db.models.deletion.CASCADE, related_name='+', to='releases.release')),
            ],
            options={
                'constraints': [models.UniqueConstraint(fields=('release', 'project', 'environment', 'hour'), name='unique_session_user_last')],
            },
        ),
        migrations.RunPython(count_users, migrations.RunPython.noop),
    ]
