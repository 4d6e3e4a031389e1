"""Adoption stages (docs/health.md §3): the 10 %-over-6-hours rule, kept current.

:func:`refresh_adoption` is the periodic job; :func:`maybe_refresh_adoption` runs it for one
organization at most once a minute and is called after each stored envelope, so that stages
stay current with no extra process (docs/decisions.md). ``manage.py monitor_adoption`` runs it for
every organization, for cron.
"""

from __future__ import annotations

from collections import defaultdict
from datetime import datetime, timedelta
from functools import reduce
from operator import or_

from django.db import transaction
from django.db.models import Q, Sum

from .. import stamps
from ..models import AdoptionTick, Project, ReleaseProjectEnvironment, SessionRollup
from ..versioning import validate_version

ADOPTION_WINDOW = timedelta(hours=6)
ADOPTION_THRESHOLD_PERCENT = 10
THROTTLE = timedelta(seconds=60)


@transaction.atomic
def refresh_adoption(*, now: datetime, organization_id: int | None = None) -> int:
    """Recompute adoption for the projects with sessions started in the last 6 hours.

    A release is adopted in an environment (non-empty name) when it has at least 10 % of the
    environment's started sessions in the window. Adoption keeps its first timestamp; a
    release that falls below the threshold gets ``unadopted`` (stage ``replaced``). Projects
    without recent sessions are left as they are. Returns the number of adopted rows.
    """
    since = (now - ADOPTION_WINDOW).replace(minute=0, second=0, microsecond=0)
    rollups = SessionRollup.objects.filter(hour__gte=since, hour__lte=now)
    if organization_id is not None:
        rollups = rollups.filter(project__organization_id=organization_id)
    rows = list(
        rollups.values(
            "project_id", "environment_id", "environment__name", "release_id", "release__version"
        )
        .annotate(n_sessions=Sum("sessions"))
        .order_by()
    )
    totals: dict[tuple[int, int], int] = defaultdict(int)
    for row in rows:
        totals[row["project_id"], row["environment_id"]] += row["n_sessions"] or 0
    adopted = {
        (row["project_id"], row["release_id"], row["environment_id"])
        for row in rows
        if row["environment__name"]
        and totals[row["project_id"], row["environment_id"]] > 0
        and (row["n_sessions"] or 0) * 100
        >= ADOPTION_THRESHOLD_PERCENT * totals[row["project_id"], row["environment_id"]]
        and validate_version(row["release__version"]) is None
    }
    projects = {row["project_id"] for row in rows}
    if not projects:
        return 0
    changed = 0
    if adopted:
        ReleaseProjectEnvironment.objects.bulk_create(
            [
                ReleaseProjectEnvironment(project_id=p, release_id=r, environment_id=e)
                for p, r, e in sorted(adopted)
            ],
            ignore_conflicts=True,
        )
        match = reduce(
            or_, (Q(project_id=p, release_id=r, environment_id=e) for p, r, e in adopted)
        )
        current = ReleaseProjectEnvironment.objects.filter(match)
        changed += current.filter(adopted__isnull=True).update(adopted=now)
        changed += current.filter(unadopted__isnull=False).update(unadopted=None)
    stale = ReleaseProjectEnvironment.objects.filter(
        project_id__in=projects, adopted__isnull=False, unadopted__isnull=True
    )
    if adopted:
        stale = stale.exclude(match)
    changed += stale.update(unadopted=now)
    if changed:  # stages moved: cached release answers are stale (releases/stamps.py)
        stamps.bump(
            Project.objects.filter(pk__in=projects).values_list("organization_id", flat=True)
        )
    return len(adopted)


#: Per organization, the latest run this process has read or made. ``last_run`` only grows,
#: so while this one is within the throttle, so is the stored one: no need to read it.
_known_runs: dict[int, datetime] = {}


def maybe_refresh_adoption(*, organization_id: int, now: datetime) -> bool:
    """Run :func:`refresh_adoption` for the organization unless it ran in the last minute."""
    known = _known_runs.get(organization_id)
    if known is not None and now - THROTTLE < known <= now:
        return False
    ticks = AdoptionTick.objects.filter(organization_id=organization_id)
    # A plain read first, so that envelopes do not queue on the tick row's lock.
    last_run = ticks.values_list("last_run", flat=True).first()
    if last_run is not None and last_run > now - THROTTLE:
        _known_runs[organization_id] = last_run
        return False
    with transaction.atomic():
        AdoptionTick.objects.get_or_create(
            organization_id=organization_id, defaults={"last_run": now - 2 * THROTTLE}
        )
        due = AdoptionTick.objects.filter(
            organization_id=organization_id, last_run__lte=now - THROTTLE
        ).update(last_run=now)
    if not due:
        return False
    refresh_adoption(now=now, organization_id=organization_id)
    _known_runs[organization_id] = now
    return True


def forget_known_runs() -> None:
    """Forget the runs read so far (tests, whose organizations may reuse ids)."""
    _known_runs.clear()
