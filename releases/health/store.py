"""Storage of one envelope's sessions and events, in one transaction.

Rollups and per-user sets are written by additive upserts (``sql.py``), so reads never
touch raw session updates."""

from __future__ import annotations

import time
import uuid
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from functools import lru_cache
from typing import Any

from django.db import IntegrityError, transaction
from django.db.models import DateTimeField, F, Value
from django.db.models.functions import Coalesce, Greatest, Least
from django.db.models.signals import m2m_changed, post_delete
from django.utils import timezone

from .. import stamps
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
    ReleaseUserLast,
    ReleaseUserSeen,
    SessionDuration,
    SessionDurationDay,
    SessionRollup,
    SessionUpdateKey,
    SessionUser,
    SessionUserLast,
    SessionUserSeen,
)
from ..services import release_create
from .items import (
    ERROR_STATUSES,
    KEY_HOURS,
    MAX_SESSION_AGE,
    EventData,
    Items,
    SessionUpdate,
    did_uuid,
)
from .periods import hour_of
from .sketch import representative
from .sql import (
    Statement,
    Tally,
    execute_together,
    insert_new,
    insert_new_statements,
    upsert,
    upsert_statements,
)


@dataclass
class StoreResult:
    sessions_stored: int = 0
    duplicates: int = 0
    events_stored: int = 0
    new_groups: int = 0


#: Seconds the ids of :class:`_Known` are trusted before they are read again.
KNOWN_TTL = 60.0


class _Known:
    """Ids this process has stored sessions under: environments per organization, releases
    per project and version, and the release-project-environment rows that exist.

    Steady ingestion names the same few releases and environments in every envelope; reading
    them each time costs four statements an envelope. Ids are added only once the transaction
    that read or created them has committed (``transaction.on_commit``). A stale id (a
    release deleted by another process) fails the envelope's foreign keys: :func:`store` then
    forgets everything and stores the envelope again, reading every id. Deletions in this
    process forget at once (the signals below); everything is forgotten after
    :data:`KNOWN_TTL` seconds anyway, which bounds how long a release unlinked from a project
    elsewhere still gets its sessions.
    """

    def __init__(self) -> None:
        self.clear()

    def clear(self) -> None:
        self.environments: dict[tuple[int, str], int] = {}
        self.releases: dict[tuple[int, str], int] = {}
        self.links: set[tuple[int, int, int]] = set()
        #: Per project: whether it may hold delivery keys of their first form.
        self.first_form_keys: dict[int, bool] = {}
        self.since = time.monotonic()

    def fresh(self) -> _Known:
        if time.monotonic() - self.since > KNOWN_TTL:
            self.clear()
        return self


_known = _Known()


def forget_known_ids(**kwargs: Any) -> None:
    """Signal receiver: a deletion, or a project removed from a release, forgets every id."""
    if kwargs.get("action", "post_remove") in ("post_remove", "post_clear"):
        _known.clear()


for _model in (Project, Release, Environment, ReleaseProject, ReleaseProjectEnvironment):
    post_delete.connect(forget_known_ids, sender=_model, dispatch_uid=f"known-ids-{_model}")
m2m_changed.connect(forget_known_ids, sender=Release.projects.through, dispatch_uid="known-ids")


class _Context:
    """Environments, releases and release-project-environment rows, created on first use."""

    def __init__(self, project: Project, known: _Known | None):
        self.project = project
        self.known = known
        self.environments: dict[str, int] = {}
        self.releases: dict[str, int] = {}
        self.links: set[tuple[int, int, int]] = set()
        self.new_links: set[tuple[int, int, int]] = set()

    def prepare(self, versions: set[str], environments: set[str]) -> None:
        organization = self.project.organization
        known = self.known
        if known is not None:
            for name in environments:
                env_id = known.environments.get((organization.pk, name))
                if env_id is not None:
                    self.environments[name] = env_id
            for version in versions:
                release_id = known.releases.get((self.project.pk, version))
                if release_id is not None:
                    self.releases[version] = release_id
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
            for release_id, version in ReleaseProject.objects.filter(
                project=self.project, release__version__in=missing
            ).values_list("release_id", "release__version"):
                self.releases[version] = release_id
            for version in sorted(missing - set(self.releases)):
                # docs/decisions.md: an unknown version becomes an open release of the project.
                release, _, _ = release_create(
                    organization=organization, version=version, projects=[self.project]
                )
                self.releases[version] = release.pk

    def link_rows(self, keys: Iterable[tuple[str, str]]) -> None:
        """Release-project-environment rows (adoption stages and environment filters)."""
        project_id = self.project.pk
        self.links = {
            (self.releases[version], project_id, self.environments[env]) for version, env in keys
        }
        known = self.known.links if self.known is not None else set()
        self.new_links = self.links - known
        ReleaseProjectEnvironment.objects.bulk_create(
            [
                ReleaseProjectEnvironment(
                    release_id=release_id, project_id=project_id, environment_id=env_id
                )
                for release_id, project_id, env_id in sorted(self.new_links)
            ],
            ignore_conflicts=True,
        )

    def remember(self) -> None:
        """After the commit: what this envelope read or created is known from now on."""
        known = _known.fresh()
        organization_id = self.project.organization_id
        project_id = self.project.pk
        for name, env_id in self.environments.items():
            known.environments[organization_id, name] = env_id
        for version, release_id in self.releases.items():
            known.releases[project_id, version] = release_id
        known.links |= self.links


class _Redo(Exception):
    """The optimistic writes of an envelope must be undone and done again, one by one."""


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

    One transaction. It is tried first with the ids this process knows and with the
    delivery keys and errored sessions written in one round trip (assuming no duplicate),
    and done again from scratch, with nothing assumed, when either assumption fails.
    """
    received = received or timezone.now()
    known: _Known | None = _known.fresh()
    optimistic = True
    for attempt in range(3):
        context = _Context(project, known)
        try:
            with transaction.atomic():
                result = _store(context, items, received, dedup=dedup, optimistic=optimistic)
        except _Redo:
            optimistic = False  # duplicates: the one-by-one path tells which
            continue
        except IntegrityError:
            if known is None or attempt == 2:
                raise
            _known.clear()  # a known id was deleted meanwhile: read them all again
            known = None
            continue
        # Only ids that are committed become known: at once in autocommit (the endpoint),
        # else when the caller's transaction commits.
        transaction.on_commit(context.remember)
        return result
    raise AssertionError("unreachable")  # pragma: no cover


def _store(
    context: _Context, items: Items, received: datetime, *, dedup: bool, optimistic: bool
) -> StoreResult:
    project = context.project
    result = StoreResult()
    sessions = items.sessions
    events = list(items.events)
    versions = {s.release for s in sessions} | {e.release for e in events if e.release}
    envs = {s.environment for s in sessions} | {e.environment for e in events if e.release}
    context.prepare(versions, envs)
    context.link_rows(
        [(s.release, s.environment) for s in sessions]
        + [(e.release, e.environment) for e in events if e.release]
    )
    if sessions:
        key_statements: list[Statement] | None = None
        if dedup and _may_hold_first_form_keys(project):
            sessions, result.duplicates = _drop_first_form_duplicates(project, sessions)
        if dedup:
            keyed, unkeyed = _delivery_keys(sessions)
            if optimistic and sum(map(len, keyed.values())) + len(unkeyed) == len(sessions):
                # No update repeats another of the envelope: assume none was stored before.
                key_statements = _key_statements(project, keyed, received)
            else:
                sessions, duplicates = _drop_duplicates(project, sessions, received)
                result.duplicates += duplicates
        _store_sessions(context, sessions, keys=key_statements)
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
    if sessions or events:
        # Health or events changed: cached release answers are stale (releases/stamps.py).
        # Last, so that concurrent envelopes of the organization wait on its row briefly.
        stamps.bump([project.organization_id])
    return result


def _delivery_keys(
    sessions: Sequence[SessionUpdate],
) -> tuple[dict[str, list[SessionUpdate]], list[SessionUpdate]]:
    """The updates per delivery key as stored (docs/health.md §6.6, in hex:
    :meth:`SessionUpdate.stored_key`), and those kept without a key.

    An individual update counts once per key; the counts of a ``sessions`` item share its
    key and are kept or dropped together; aggregates without a key are always kept."""
    keyed: dict[str, list[SessionUpdate]] = {}
    unkeyed: list[SessionUpdate] = []
    for update in sessions:
        key = update.stored_key()
        if key is not None:
            group = keyed.setdefault(key, [])
            if update.aggregate or not group:
                group.append(update)
        else:
            unkeyed.append(update)
    return keyed, unkeyed


def _key_statements(
    project: Project, keyed: dict[str, list[SessionUpdate]], received: datetime
) -> list[Statement]:
    return insert_new_statements(
        SessionUpdateKey,
        ("project_id", "key", "received"),
        [(project.pk, key, received) for key in keyed],
        keys=2,
        returning="key",
    )


def _drop_duplicates(
    project: Project, sessions: list[SessionUpdate], received: datetime
) -> tuple[list[SessionUpdate], int]:
    """The updates whose delivery key is new (docs/health.md §6.6), with one bulk insert of
    the keys."""
    keyed, _ = _delivery_keys(sessions)
    (new,) = execute_together([_key_statements(project, keyed, received)])
    fresh_ids = {id(update) for key in new for update in keyed[key.hex]}
    kept = [s for s in sessions if id(s) in fresh_ids or (s.aggregate and s.key is None)]
    return kept, len(sessions) - len(kept)


def _may_hold_first_form_keys(project: Project) -> bool:
    """Whether the project may hold delivery keys stored in their first form, before they
    began with their hour (docs/health.md §6.6): asked once a minute per process
    (:data:`KNOWN_TTL`), two probes of the ends of the project's keys. Such keys are pruned
    like the others, six days after they were received; no new one is made."""
    known = _known.fresh().first_form_keys
    holds = known.get(project.pk)
    if holds is None:
        first, end = (uuid.UUID(int=hour << 96) for hour in (KEY_HOURS.start, KEY_HOURS.stop))
        keys = SessionUpdateKey.objects.filter(project=project)
        holds = keys.filter(key__lt=first).exists() or keys.filter(key__gte=end).exists()
        known[project.pk] = holds
    return holds


def _drop_first_form_duplicates(
    project: Project, sessions: list[SessionUpdate]
) -> tuple[list[SessionUpdate], int]:
    """The updates whose key is not stored in its first form: those delivered before keys
    began with their hour count once too."""
    firsts = sorted({key for s in sessions if (key := s.first_form_key()) is not None})
    stored: set[uuid.UUID] = set()
    for start in range(0, len(firsts), 500):  # within any database's parameters
        stored.update(
            SessionUpdateKey.objects.filter(
                project=project, key__in=firsts[start : start + 500]
            ).values_list("key", flat=True)
        )
    if not stored:
        return sessions, 0
    kept = [s for s in sessions if s.first_form_key() not in stored]
    return kept, len(sessions) - len(kept)


#: Users by their latest hour and latest crashed hour, per environment and for all of them,
#: moved by the upserts of the seen rows in the same statement (docs/health.md §9.3).
USERS_BY_ENVIRONMENT = Tally(SessionUserLast, groups=3, value="hour", counts=("users", "crashed"))
USERS_BY_RELEASE = Tally(ReleaseUserLast, groups=2, value="hour", counts=("users", "crashed"))


#: The counts of a ``SessionRollup`` row, in the order ``_store_sessions`` keeps them.
_ROLLUP_COUNTS = ("updates", "sessions", "crashed", "abnormal", "unhandled", "errored")
_UPDATES, _SESSIONS, _ERRORED = 0, 1, 5
_STATUS_COUNTS = {"crashed": 2, "abnormal": 3, "unhandled": 4}


@lru_cache(maxsize=65536)
def _did_key(did: str) -> str:
    """The did as stored, as text: hashed, compared and written without Python calls (a
    ``UUID``'s are Python code); canonical, so that text and UUID order agree."""
    return str(did_uuid(did))


def _store_sessions(
    context: _Context,
    sessions: Sequence[SessionUpdate],
    *,
    keys: list[Statement] | None = None,
) -> None:
    """Rollups, user sets and durations (hourly and daily) of a batch: one multi-row statement
    per table, sent in two round trips (errored sessions first, since their count goes into
    the rollups).

    With ``keys`` (the insert of the delivery keys of every update), the keys go in the first
    round trip too, on the assumption that none is stored yet; when one is, :class:`_Redo`
    undoes the transaction (``store`` then drops duplicates first).
    """
    project_id = context.project.pk
    # (release, env, hour) -> the rollup's counts, in _ROLLUP_COUNTS order.
    counters: dict[tuple[int, int, datetime], list[int]] = {}
    # (release, env, hour, did); (release, env, did) -> [last hour, last crashed hour];
    # (env, did) -> last hour.
    users: set[tuple[int, int, datetime, str]] = set()
    seen: dict[tuple[int, int, str], list[datetime | None]] = {}
    project_seen: dict[tuple[int, str], datetime] = {}
    durations: Counter[tuple[int, int, datetime, int]] = Counter()
    errored_rows: dict[uuid.UUID, tuple[int, int, datetime]] = {}
    release_ids = context.releases
    # One object per UTC hour, found by its fields: cheaper than working out and hashing a
    # new datetime for each update (docs/performance.md §6.9).
    hours: dict[tuple[int, int, int, int], datetime] = {}

    for update in sessions:
        release_id = release_ids[update.release]
        env_id = context.environments[update.environment]
        started = update.started
        if started.tzinfo is UTC:
            wall = (started.year, started.month, started.day, started.hour)
            hour = hours.get(wall)
            if hour is None:
                hour = hours[wall] = hour_of(started)
        else:
            hour = hour_of(started)
        key = (release_id, env_id, hour)
        counts = counters.get(key)
        if counts is None:
            counts = counters[key] = [0] * len(_ROLLUP_COUNTS)
        counts[_UPDATES] += 1
        quantity = update.quantity
        if update.init:
            counts[_SESSIONS] += quantity
        status = update.status
        column = _STATUS_COUNTS.get(status)
        if column is not None:
            counts[column] += quantity
        sid = update.sid
        if sid is None:  # a count of an aggregate
            if status in ERROR_STATUSES:
                counts[_ERRORED] += quantity
        elif update.errors > 0 or status in ERROR_STATUSES:
            errored_rows.setdefault(sid, key)
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
        if status == "exited" and update.duration is not None and sid is not None:
            # Stored as its bucket's value (within 1 %): rows per hour stay bounded.
            durations[release_id, env_id, hour, representative(round(update.duration * 1000))] += 1

    errored_statements = insert_new_statements(
        ErroredSession,
        ("project_id", "release_id", "sid", "hour"),
        [(project_id, key[0], sid, key[2]) for sid, key in errored_rows.items()],
        keys=3,
        returning="sid",
    )
    new_keys, new_sids = execute_together([keys or [], errored_statements])
    if keys is not None and len(new_keys) < sum(statement.rows for statement in keys):
        raise _Redo()
    for sid in new_sids:
        counters[errored_rows[sid]][_ERRORED] += 1

    # The same dids for all environments of a release: a did of two environments counts once.
    release_seen: dict[tuple[int, str], list[datetime | None]] = {}
    for (release_id, _, did), (hour, crashed_hour) in seen.items():
        latest = release_seen.get((release_id, did))
        if latest is None:
            release_seen[release_id, did] = [hour, crashed_hour]
        else:
            if hour > latest[0]:  # type: ignore[operator]
                latest[0] = hour
            if crashed_hour is not None and (latest[1] is None or crashed_hour > latest[1]):
                latest[1] = crashed_hour

    # Seven tables that do not depend on each other, and the users' counts that the seen rows
    # move: one round trip (sql.execute_together).
    writes: list[list[Statement]] = []
    writes.append(
        upsert_statements(
            SessionRollup,
            ("project_id", "release_id", "environment_id", "hour", *_ROLLUP_COUNTS),
            [(project_id, *key, *counts) for key, counts in counters.items()],
            keys=4,
            add=_ROLLUP_COUNTS,
        )
    )
    writes.append(
        upsert_statements(
            SessionUser,
            ("project_id", "release_id", "environment_id", "hour", "did"),
            [(project_id, *row) for row in users],
            keys=5,
        )
    )
    writes.append(
        upsert_statements(
            SessionUserSeen,
            ("project_id", "release_id", "environment_id", "did", "last_hour", "last_crashed_hour"),
            [(project_id, *key, *latest) for key, latest in seen.items()],
            keys=4,
            latest=("last_hour", "last_crashed_hour"),
            tally=USERS_BY_ENVIRONMENT,
        )
    )
    writes.append(
        upsert_statements(
            ReleaseUserSeen,
            ("project_id", "release_id", "did", "last_hour", "last_crashed_hour"),
            [(project_id, *key, *latest) for key, latest in release_seen.items()],
            keys=3,
            latest=("last_hour", "last_crashed_hour"),
            tally=USERS_BY_RELEASE,
        )
    )
    writes.append(
        upsert_statements(
            ProjectUserSeen,
            ("project_id", "environment_id", "did", "last_hour"),
            [(project_id, env_id, did, hour) for (env_id, did), hour in project_seen.items()],
            keys=3,
            latest=("last_hour",),
        )
    )
    writes.append(
        upsert_statements(
            SessionDuration,
            ("project_id", "release_id", "environment_id", "hour", "duration_ms", "count"),
            [(project_id, *key, count) for key, count in durations.items()],
            keys=5,
            add=("count",),
        )
    )
    writes.append(
        upsert_statements(
            SessionDurationDay,
            ("project_id", "release_id", "environment_id", "day", "duration_ms", "count"),
            [(project_id, *key, count) for key, count in _per_day(durations).items()],
            keys=5,
            add=("count",),
        )
    )
    execute_together(writes)


def _per_day(
    durations: Counter[tuple[int, int, datetime, int]],
) -> Counter[tuple[int, int, date, int]]:
    """The hourly duration counts summed per UTC day (hours are UTC): the day rows
    (docs/health.md §9.4)."""
    days: dict[datetime, date] = {}
    per_day: Counter[tuple[int, int, date, int]] = Counter()
    for (release_id, env_id, hour, duration_ms), count in durations.items():
        day = days.get(hour)
        if day is None:
            day = days[hour] = hour.date()
        per_day[release_id, env_id, day, duration_ms] += count
    return per_day


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
            span = seen.setdefault((release, env_id), [event.timestamp, event.timestamp])
            span[0] = min(span[0], event.timestamp)
            span[1] = max(span[1], event.timestamp)
        if event.fingerprint is not None:
            first_release = release
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
