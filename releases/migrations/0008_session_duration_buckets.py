"""Re-bucket stored session durations to the values of releases/health/sketch.py.

Rows whose duration has another representative are merged into the representative's row
(counts added), one project and release at a time. Bucketed values are valid durations and
cannot be told apart from exact ones, so there is nothing to undo.
"""

from collections import Counter

from django.db import migrations

from releases.health.sketch import EXACT_BELOW_MS, representative


def rebucket(apps, schema_editor):
    SessionDuration = apps.get_model("releases", "SessionDuration")
    pairs = list(
        SessionDuration.objects.filter(duration_ms__gte=EXACT_BELOW_MS)
        .values_list("project_id", "release_id")
        .distinct()
        .order_by()
    )
    for project_id, release_id in pairs:
        rows = SessionDuration.objects.filter(project_id=project_id, release_id=release_id)
        merged = Counter()
        changed = False
        for environment_id, hour, duration_ms, count in rows.values_list(
            "environment_id", "hour", "duration_ms", "count"
        ).iterator():
            value = representative(duration_ms)
            changed = changed or value != duration_ms
            merged[environment_id, hour, value] += count
        if not changed:
            continue
        rows.delete()
        SessionDuration.objects.bulk_create(
            [
                SessionDuration(
                    project_id=project_id,
                    release_id=release_id,
                    environment_id=environment_id,
                    hour=hour,
                    duration_ms=value,
                    count=count,
                )
                for (environment_id, hour, value), count in merged.items()
            ],
            batch_size=1000,
        )


class Migration(migrations.Migration):
    dependencies = [
        ("releases", "0007_changestamp"),
    ]

    operations = [
        migrations.RunPython(rebucket, migrations.RunPython.noop),
    ]
