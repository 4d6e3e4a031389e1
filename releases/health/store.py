"""Storage of one envelope's sessions and events, in one transaction.

Rollups and per-user sets are written by additive upserts (``sql.py``), so reads never
touch raw session updates."""

from __future__ import annotations

import uuid
from collections import Counter, defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import lru_cache

from django.db import transaction
from django.db.models import DateTimeField, F, Value
from django.db.models.functions import Coalesce, Greatest, Least
from django.utils import timezone

from ..models import (
    Environment,
    ErroredSession,
    IngestOutcome,
    IssueGroup,
    Project,
    ProjectUserSeen,
    Release,
    ReleaseProject,
    ReleaseProjectEnvironment,
    SessionDuration,
    SessionRollup,
    SessionUpdateKey,
    SessionUser,
    SessionUserSeen,
)
from ..services import release_create
from .items import ERROR_STATUSES, MAX_SESSION_AGE, EventData, Items, SessionUpdate, did_uuid
from .periods import hour_of
from .sketch import representative
from .sql import insert_new, upsert


@dataclass
class StoreResult:
    sessions_stored: int = 0
    duplicates: int = 0
    events_stored: int = 0
    new_groups: int = 0


class _Context:
    """Environments, releases and release-project-environment rows, created on first use."""

    def __init__(self, project: Project):
        self.project = project
        self.environments: dict[str, int] = {}
        self.releases: dict[str, Release] = {}

    def prepare(self, versions: set[str], environments: set[str]) -> None:
        organization = self.project.organization
        missing_envs = environments - set(self.environments)
        if missing_envs:
            Environment.objects.bulk_create(
                [Environment(organization=organization, name=name) for name in missing_envs],
                ignore_conflicts=True,
            )
            for env_id, name in Environment.objects.filter(
                organization=organization, name__in=missing_envs
            ).values_list("id", "name"):
                self.environments[name] = env_id
        missing = versions - set(self.releases)
        if missing:
            for link in ReleaseProject.objects.filter(
                project=self.project, release__version__in=missing
            ).select_related("release"):
                self.releases[link.release.version] = link.release
            for version in sorted(missing - set(self.releases)):
                # docs/decisions.md: an unknown version becomes an open release of the project.
                release, _, _ = release_create(
                    organization=organization, version=version, projects=[self.project]
                )
                self.releases[version] = release

    def link_rows(self, keys: Iterable[tuple[str, str]]) -> None:
        """Release-project-environment rows (adoption stages and environment filters)."""
        ReleaseProjectEnvironment.objects.bulk_create(
            [
                ReleaseProjectEnvironment(
                    release=self.releases[version],
                    project=self.project,
                    environment_id=self.environments[env],
                )
                for version, env in sorted(set(keys))
            ],
            ignore_conflicts=True,
        )


@transaction.atomic
def store(
    project: Project,
    items: Items,
    *,
    received: datetime | None = None,
    dedup: bool = True,
) -> StoreResult:
    """Store an envelope's sessions, events and dropped counts, all or nothing.

    ``dedup`` (on for the endpoint) ignores individual session updates already stored; bulk
    loaders that generate unique updates turn it off.
    """
    received = received or timezone.now()
    result = StoreResult()
    context = _Context(project)
    sessions = items.sessions
    events = list(items.events)
    versions = {s.release for s in sessions} | {e.release for e in events if e.release}
    envs = {s.environment for s in sessions} | {e.environment for e in events if e.release}
    context.prepare(versions, envs)
    context.link_rows(
        [(s.release, s.environment) for s in sessions]
        + [(e.release, e.environment) for e in events if e.release]
    )
    if dedup and sessions:
        sessions, result.duplicates = _drop_duplicates(project, sessions, received)
    if sessions:
        _store_sessions(context, sessions)
        result.sessions_stored = sum(s.quantity for s in sessions if s.init)
    if events:
        result.new_groups = _store_events(context, events)
        result.events_stored = len(events)
    if items.dropped:
        day = received.date()
        upsert(
            IngestOutcome,
            ("project_id", "day", "category", "reason", "quantity"),
            [
                (project.pk, day, category, reason, quantity)
                for (category, reason), quantity in items.dropped.items()
            ],
            keys=4,
            add=("quantity",),
        )
    return result


def _drop_duplicates(
    project: Project, sessions: list[SessionUpdate], received: datetime
) -> tuple[list[SessionUpdate], int]:
    """The updates whose delivery key is new (docs/health.md §6.6), with one bulk insert of
    the keys. An individual update counts once per key; the counts of a ``sessions`` item
    share its key and are kept or dropped together; updates without a key are kept."""
    keyed: dict[uuid.UUID, list[SessionUpdate]] = {}
    for update in sessions:
        key = update.key if update.key is not None or update.aggregate else update.dedup_key()
        if key is not None:
            group = keyed.setdefault(key, [])
            if update.aggregate or not group:
                group.append(update)
    new = insert_new(
        SessionUpdateKey,
        ("project_id", "key", "received"),
        [(project.pk, key, received) for key in keyed],
        keys=2,
        returning="key",
    )
    fresh_ids = {id(update) for key in new for update in keyed[key]}
    kept = [s for s in sessions if id(s) in fresh_ids or (s.aggregate and s.key is None)]
    return kept, len(sessions) - len(kept)


@lru_cache(maxsize=65536)
def _did_key(did: str) -> uuid.UUID:
    return did_uuid(did)


def _store_sessions(context: _Context, sessions: Sequence[SessionUpdate]) -> None:
    """Rollups, user sets and durations of a batch: one multi-row statement per table."""
    project_id = context.project.pk
    counters: dict[tuple[int, int, datetime], Counter[str]] = defaultdict(Counter)
    # (release, env, hour, did); (release, env, did) -> [last hour, last crashed hour];
    # (env, did) -> last hour.
    users: set[tuple[int, int, datetime, uuid.UUID]] = set()
    seen: dict[tuple[int, int, uuid.UUID], list[datetime | None]] = {}
    project_seen: dict[tuple[int, uuid.UUID], datetime] = {}
    durations: Counter[tuple[int, int, datetime, int]] = Counter()
    errored_rows: dict[uuid.UUID, tuple[int, int, datetime]] = {}
    release_ids = {version: release.pk for version, release in context.releases.items()}
    hours: dict[datetime, datetime] = {}

    for update in sessions:
        release_id = release_ids[update.release]
        env_id = context.environments[update.environment]
        started = update.started
        hour = hours.get(started)
        if hour is None:
            hour = hours[started] = hour_of(started)
        key = (release_id, env_id, hour)
        counter = counters[key]
        counter["updates"] += 1
        if update.init:
            counter["sessions"] += update.quantity
        status = update.status
        if status in ("crashed", "abnormal", "unhandled"):
            counter[status] += update.quantity
        if update.aggregate:
            if status in ERROR_STATUSES:
                counter["errored"] += update.quantity
        elif update.errored and update.sid is not None:
            errored_rows.setdefault(update.sid, key)
        if update.did:
            did = _did_key(update.did)
            users.add((release_id, env_id, hour, did))
            latest = seen.get((release_id, env_id, did))
            if latest is None:
                latest = seen[release_id, env_id, did] = [hour, None]
            elif hour > latest[0]:  # type: ignore[operator]
                latest[0] = hour
            if status == "crashed" and (latest[1] is None or hour > latest[1]):
                latest[1] = hour
            previous = project_seen.get((env_id, did))
            if previous is None or hour > previous:
                project_seen[env_id, did] = hour
        if status == "exited" and update.duration is not None and not update.aggregate:
            # Stored as its bucket's value (within 1 %): rows per hour stay bounded.
            durations[release_id, env_id, hour, representative(round(update.duration * 1000))] += 1

    if errored_rows:
        new_sids = insert_new(
            ErroredSession,
            ("project_id", "release_id", "sid", "hour"),
            [(project_id, key[0], sid, key[2]) for sid, key in errored_rows.items()],
            keys=3,
            returning="sid",
        )
        for sid in new_sids:
            counters[errored_rows[sid]]["errored"] += 1

    fields = ("updates", "sessions", "crashed", "abnormal", "unhandled", "errored")
    upsert(
        SessionRollup,
        ("project_id", "release_id", "environment_id", "hour", *fields),
        [
            (project_id, release_id, env_id, hour, *(counter[name] for name in fields))
            for (release_id, env_id, hour), counter in counters.items()
        ],
        keys=4,
        add=fields,
    )
    upsert(
        SessionUser,
        ("project_id", "release_id", "environment_id", "hour", "did"),
        [(project_id, *row) for row in users],
        keys=5,
    )
    upsert(
        SessionUserSeen,
        ("project_id", "release_id", "environment_id", "did", "last_hour", "last_crashed_hour"),
        [(project_id, *key, *latest) for key, latest in seen.items()],
        keys=4,
        latest=("last_hour", "last_crashed_hour"),
    )
    upsert(
        ProjectUserSeen,
        ("project_id", "environment_id", "did", "last_hour"),
        [(project_id, env_id, did, hour) for (env_id, did), hour in project_seen.items()],
        keys=3,
        latest=("last_hour",),
    )
    upsert(
        SessionDuration,
        ("project_id", "release_id", "environment_id", "hour", "duration_ms", "count"),
        [(project_id, *key, count) for key, count in durations.items()],
        keys=5,
        add=("count",),
    )


def _store_events(context: _Context, events: Sequence[EventData]) -> int:
    """First/last seen per release, project and environment, and new groups, in statements
    per distinct (release, environment) and release rather than per event: one update per pair
    seen, one insert of the envelope's groups, one or two updates per release that opens some.

    Returns the number of new groups that have a release. A group takes the title, release and
    time of its first event in the envelope.
    """
    project = context.project
    seen: dict[tuple[int, int], list[datetime]] = {}
    # fingerprint -> (first event, its release id, its environment id)
    firsts: dict[str, tuple[EventData, int | None, int]] = {}
    for event in events:
        release = context.releases.get(event.release) if event.release else None
        env_id = context.environments[event.environment] if release is not None else 0
        if release is not None:
            span = seen.setdefault((release.pk, env_id), [event.timestamp, event.timestamp])
            span[0] = min(span[0], event.timestamp)
            span[1] = max(span[1], event.timestamp)
        if event.fingerprint is not None:
            first_release = release.pk if release is not None else None
            firsts.setdefault(event.fingerprint, (event, first_release, env_id))
    for (release_id, env_id), (first, last) in sorted(seen.items()):
        earliest = Value(first, output_field=DateTimeField())
        latest = Value(last, output_field=DateTimeField())
        ReleaseProjectEnvironment.objects.filter(
            release_id=release_id, project=project, environment_id=env_id
        ).update(
            first_seen=Least(Coalesce(F("first_seen"), earliest), earliest),
            last_seen=Greatest(Coalesce(F("last_seen"), latest), latest),
        )
    if not firsts:
        return 0
    # ON CONFLICT DO NOTHING: a group a concurrent envelope opens first is new there only.
    new = insert_new(
        IssueGroup,
        ("project_id", "fingerprint", "title", "first_release_id", "first_seen"),
        [(project.pk, fp, e.title, rid, e.timestamp) for fp, (e, rid, _) in firsts.items()],
        keys=2,
        returning="fingerprint",
    )
    opened: Counter[tuple[int, int]] = Counter()
    for fingerprint in new:
        _, rid, env_id = firsts[fingerprint]
        if rid is not None:
            opened[rid, env_id] += 1
    per_release: Counter[int] = Counter()
    for (rid, env_id), count in sorted(opened.items()):
        ReleaseProjectEnvironment.objects.filter(
            release_id=rid, project=project, environment_id=env_id
        ).update(new_issues_count=F("new_issues_count") + count)
        per_release[rid] += count
    for rid, count in sorted(per_release.items()):
        ReleaseProject.objects.filter(release_id=rid, project=project).update(
            new_groups=Coalesce(F("new_groups"), 0) + count
        )
    return sum(opened.values())


def prune_update_keys(now: datetime) -> int:
    """Forget duplicate-delivery keys that no accepted update can match any more.

    An update is refused when it is older than five days, so a key received more than five
    days (and a day of margin for clock drift) ago is never needed again.
    """
    cutoff = now - MAX_SESSION_AGE - timedelta(days=1)
    deleted, _ = SessionUpdateKey.objects.filter(received__lt=cutoff).delete()
    return deleted
