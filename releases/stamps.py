"""Change stamps: one counter per organization, raised by every write to its release data.

The release endpoints cache their answers and tag them (``ETag``) under the organization's
stamp (docs/performance.md §5), so each writer raises it in the transaction of its write:
the API's write endpoints, the envelope endpoint when it stores something, the admin, and the
background jobs. A reader reads the stamp before the data, so an answer cached under a stamp
is never older than that stamp.
"""

from __future__ import annotations

from collections.abc import Iterable

from django.db import connection
from django.db.models import F

from accounts.models import Organization

from .models import ChangeStamp


def bump(organization_ids: Iterable[int]) -> None:
    """Raise the stamps of these organizations, in one statement."""
    ids = sorted(set(organization_ids))
    if not ids:
        return
    table = connection.ops.quote_name(ChangeStamp._meta.db_table)
    # ON CONFLICT … DO UPDATE: the first write of an organization creates its row, and two
    # concurrent first writes both count (a plain insert-if-missing would lose one).
    values = ", ".join(["(%s, 1)"] * len(ids))
    with connection.cursor() as cursor:
        cursor.execute(
            f"INSERT INTO {table} (organization_id, value) VALUES {values} "  # noqa: S608
            f"ON CONFLICT (organization_id) DO UPDATE SET value = {table}.value + 1",
            ids,
        )


def bump_all() -> None:
    """Raise every organization's stamp: for writes that may touch any of them (the admin,
    retention)."""
    ChangeStamp.objects.update(value=F("value") + 1)
    missing = Organization.objects.exclude(pk__in=ChangeStamp.objects.values("organization_id"))
    ChangeStamp.objects.bulk_create(
        [ChangeStamp(organization_id=pk, value=1) for pk in missing.values_list("pk", flat=True)],
        ignore_conflicts=True,
    )
