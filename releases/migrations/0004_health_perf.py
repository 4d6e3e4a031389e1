"""Release health reads from last-seen user tables and covering indexes; backfilled here."""

import django.db.models.deletion
from django.db import migrations, models


BACKFILL = [
    """
    INSERT INTO releases_sessionuserseen
        (project_id, release_id, environment_id, did, last_hour, last_crashed_hour)
    SELECT project_id, release_id, environment_id, did,
           MAX(hour), MAX(CASE WHEN crashed THEN hour END)
    FROM releases_sessionuser
    GROUP BY project_id, release_id, environment_id, did
    """,
    """
    INSERT INTO releases_projectuserseen (project_id, environment_id, did, last_hour)
    SELECT project_id, environment_id, did, MAX(hour)
    FROM releases_sessionuser
    GROUP BY project_id, environment_id, did
    """,
    "DELETE FROM releases_sessionuser WHERE crashed",
]


class Migration(migrations.Migration):

    dependencies = [
        ('releases', '0003_release_head_commit_previous'),
    ]

    operations = [
        migrations.CreateModel(
            name='ProjectUserSeen',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                ('did', models.UUIDField()),
                ('last_hour', models.DateTimeField()),
            ],
        ),
        migrations.CreateModel(
            name='SessionUserSeen',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                ('did', models.UUIDField()),
                ('last_hour', models.DateTimeField()),
                ('last_crashed_hour', models.DateTimeField(blank=True, null=True)),
            ],
        ),
        migrations.RemoveIndex(
            model_name='sessionduration',
            name='session_duration_release',
        ),
        migrations.RemoveIndex(
            model_name='sessionrollup',
            name='session_rollup_project_hour',
        ),
        migrations.AddIndex(
            model_name='sessionduration',
            index=models.Index(fields=['release', 'project', 'hour'], include=('environment', 'duration_ms', 'count'), name='session_duration_release'),
        ),
        migrations.AddIndex(
            model_name='sessionrollup',
            index=models.Index(fields=['project', 'hour'], include=('environment', 'sessions'), name='session_rollup_project_hour'),
        ),
        migrations.AddField(
            model_name='projectuserseen',
            name='environment',
            field=models.ForeignKey(db_index=False, on_delete=django.db.models.deletion.CASCADE, related_name='+', to='releases.environment'),
        ),
        migrations.AddField(
            model_name='projectuserseen',
            name='project',
            field=models.ForeignKey(db_index=False, on_delete=django.db.models.deletion.CASCADE, related_name='+', to='releases.project'),
        ),
        migrations.AddField(
            model_name='sessionuserseen',
            name='environment',
            field=models.ForeignKey(db_index=False, on_delete=django.db.models.deletion.CASCADE, related_name='+', to='releases.environment'),
        ),
        migrations.AddField(
            model_name='sessionuserseen',
            name='project',
            field=models.ForeignKey(db_index=False, on_delete=django.db.models.deletion.CASCADE, related_name='+', to='releases.project'),
        ),
        migrations.AddField(
            model_name='sessionuserseen',
            name='release',
            field=models.ForeignKey(db_index=False, on_delete=django.db.models.deletion.CASCADE, related_name='+', to='releases.release'),
        ),
        migrations.AddIndex(
            model_name='projectuserseen',
            index=models.Index(fields=['project', 'last_hour'], include=('environment', 'did'), name='project_user_seen_hour'),
        ),
        migrations.AddConstraint(
            model_name='projectuserseen',
            constraint=models.UniqueConstraint(fields=('project', 'environment', 'did'), name='unique_project_user_seen'),
        ),
        migrations.AddIndex(
            model_name='sessionuserseen',
            index=models.Index(fields=['release', 'project', 'last_hour'], include=('environment', 'did', 'last_crashed_hour'), name='session_user_seen_release'),
        ),
        migrations.AddConstraint(
            model_name='sessionuserseen',
            constraint=models.UniqueConstraint(fields=('project', 'release', 'environment', 'did'), name='unique_session_user_seen'),
        ),
        # Backfill from the hourly sets while they still say which users crashed; then the
        # crashed copies go, as window totals no longer read them. Plain SQL for both backends.
        migrations.RunSQL(BACKFILL, migrations.RunSQL.noop),
        migrations.RemoveConstraint(
            model_name='sessionuser',
            name='unique_session_user',
        ),
        migrations.RemoveField(
            model_name='sessionuser',
            name='crashed',
        ),
        migrations.AddConstraint(
            model_name='sessionuser',
            constraint=models.UniqueConstraint(fields=('project', 'release', 'environment', 'hour', 'did'), name='unique_session_user'),
        ),
    ]
