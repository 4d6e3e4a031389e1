"""Session durations per day (SessionDurationDay), filled from the hourly rows.

Health percentiles read whole days from the day rows and only the window's first, partial
day from the hourly ones (docs/health.md §9.4). The backfill is one INSERT … SELECT that sums
the hourly counts per UTC day; reversing drops the table, which nothing else needs.
"""

import django.db.models.deletion
from django.db import connection as default_connection
from django.db import migrations, models

# The UTC day of an hourly row's ``hour``, as the DateField stores it. PostgreSQL: the
# timestamptz at UTC, cast. SQLite: Django stores aware datetimes as UTC text
# ("YYYY-MM-DD HH:MM:SS"), and a DateField as "YYYY-MM-DD".
DAY_OF_HOUR = {
    "postgresql": "CAST(({hour} AT TIME ZONE 'UTC') AS date)",
    "sqlite": "date({hour})",
}


def fill_days(apps, schema_editor):
    """One row per project, release, environment, UTC day and bucket: the sum of its hours."""
    connection = schema_editor.connection if schema_editor is not None else default_connection
    SessionDuration = apps.get_model("releases", "SessionDuration")
    SessionDurationDay = apps.get_model("releases", "SessionDurationDay")
    quote = connection.ops.quote_name

    def column(model, name):
        return quote(model._meta.get_field(name).column)

    keys = ("project", "release", "environment", "duration_ms")
    source = [column(SessionDuration, name) for name in keys]
    target = [column(SessionDurationDay, name) for name in keys]
    day = DAY_OF_HOUR[connection.vendor].format(hour=column(SessionDuration, "hour"))
    count = column(SessionDuration, "count")
    # Identifiers from the models' metadata; no values.
    sql = (
        f"INSERT INTO {quote(SessionDurationDay._meta.db_table)} "  # noqa: S608
        f"({', '.join(target)}, {column(SessionDurationDay, 'day')}, "
        f"{column(SessionDurationDay, 'count')}) "
        f"SELECT {', '.join(source)}, {day}, SUM({count}) "
        f"FROM {quote(SessionDuration._meta.db_table)} "
        f"GROUP BY {', '.join(source)}, {day}"
    )
    with connection.cursor() as cursor:
        cursor.execute(sql)


class Migration(migrations.Migration):

    dependencies = [
        ('releases', '0009_user_counts'),
    ]

    operations = [
        migrations.CreateModel(
            name='SessionDurationDay',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                ('day', models.DateField()),
                ('duration_ms', models.BigIntegerField()),
                ('count', models.BigIntegerField(default=0)),
                ('environment', models.ForeignKey(db_index=False, on_delete=django.db.models.deletion.CASCADE, related_name='+', to='releases.environment')),
                ('project', models.ForeignKey(db_index=False, on_delete=django.db.models.deletion.CASCADE, related_name='+', to='releases.project')),
                ('release', models.ForeignKey(db_index=False, on_delete=django.db.models.deletion.CASCADE, related_name='+', to='releases.release')),
            ],
            options={
                'indexes': [models.Index(fields=['release', 'project', 'day'], include=('environment', 'duration_ms', 'count'), name='session_duration_day_release')],
                'constraints': [models.UniqueConstraint(fields=('project', 'release', 'environment', 'day', 'duration_ms'), name='unique_session_duration_day')],
            },
        ),
        migrations.RunPython(fill_days, migrations.RunPython.noop),
    ]
