"""Release-health tables: client keys, session rollups, per-user sets and ingest bookkeeping.

Written by the envelope endpoint (``releases.health.store``) and read by
``releases.health.reads``; never by the release API directly.
"""

from __future__ import annotations

import secrets
from typing import Any, ClassVar

from django.conf import settings
from django.db import models
from django.utils import timezone

from accounts.models import Organization

from .core import Environment, Project, Release


def _new_key() -> str:
    return secrets.token_hex(16)


class ProjectKeyQuerySet(models.QuerySet["ProjectKey"]):
    def active(self) -> ProjectKeyQuerySet:
        return self.filter(is_active=True)


class ProjectKey(models.Model):
    """A client key (DSN) of a project: SDKs authenticate envelopes with its public key."""

    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="keys")
    label = models.CharField(max_length=64, blank=True, default="Default")
    public_key = models.CharField(max_length=32, unique=True, default=_new_key)
    secret_key = models.CharField(max_length=32, default=_new_key)
    # A revoked key is kept so that its envelopes get 403 instead of "unknown key".
    is_active = models.BooleanField(default=True)
    date_added = models.DateTimeField(default=timezone.now)

    objects = ProjectKeyQuerySet.as_manager()

    def __str__(self) -> str:
        return f"{self.project}: {self.public_key}"

    @property
    def dsn(self) -> str:
        """``http://<public_key>@<SENTRY_DSN_HOST>/<project_id>`` (the host may carry a scheme)."""
        scheme, _, host = settings.SENTRY_DSN_HOST.rpartition("://")
        return f"{scheme or 'http'}://{self.public_key}@{host.rstrip('/')}/{self.project_id}"


class SessionRollup(models.Model):
    """Session counters per project, release, environment and hour of the sessions' start.

    Maintained at ingest (``ingestion.py``) with additive upserts; every health number except
    distinct users and durations is a sum over these rows.
    """

    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="+")
    release = models.ForeignKey(Release, on_delete=models.CASCADE, related_name="+")
    environment = models.ForeignKey(Environment, on_delete=models.CASCADE, related_name="+")
    hour = models.DateTimeField()
    # Session updates received (rows, any status): "has health data".
    updates = models.BigIntegerField(default=0)
    # Started sessions: ``init`` updates plus aggregate totals.
    sessions = models.BigIntegerField(default=0)
    crashed = models.BigIntegerField(default=0)
    abnormal = models.BigIntegerField(default=0)
    unhandled = models.BigIntegerField(default=0)
    # Distinct errored sids (individual updates) plus aggregate errored/abnormal/crashed.
    errored = models.BigIntegerField(default=0)

    class Meta:
        constraints: ClassVar = [
            models.UniqueConstraint(
                fields=["project", "release", "environment", "hour"], name="unique_session_rollup"
            ),
        ]
        indexes: ClassVar = [
            # Covers the project-wide 24 h sessions (adoption) with an index-only scan.
            models.Index(
                fields=["project", "hour"],
                include=["environment", "sessions"],
                name="session_rollup_project_hour",
            ),
            models.Index(fields=["release", "project", "hour"], name="session_rollup_release"),
        ]

    def __str__(self) -> str:
        return f"{self.release_id}/{self.project_id}/{self.environment_id} @ {self.hour}"


def _per_row_key(to: type[models.Model], *, db_index: bool = False) -> models.ForeignKey[Any, Any]:
    """A foreign key of the tables that ingestion writes for every update: without an index
    of its own (each costs every row a write; the tables' unique constraints lead with what is
    searched) and without a database constraint, whose check would cost every new row one
    lookup per key at commit (docs/performance.md §6.6). Nothing is lost: these rows are
    written in the transaction of their ``SessionRollup`` row, whose constraints still fail it
    when a release or environment is deleted meanwhile, and deletions reach them through
    Django's cascade."""
    return models.ForeignKey(
        to,
        on_delete=models.CASCADE,
        related_name="+",
        db_index=db_index,
        db_constraint=False,
    )


class PerReleaseEnvironment(models.Model):
    """Rows per project, release and environment, written for every ingested update.

    Their keys are :func:`_per_row_key`: each subclass's unique constraint leads with project,
    another of its indexes with release, and environments are not deleted on their own.
    """

    project = _per_row_key(Project)
    release = _per_row_key(Release)
    environment = _per_row_key(Environment)

    class Meta:
        abstract = True


class SessionUser(PerReleaseEnvironment):
    """A distinct id seen per project, release, environment and hour: users per stats bucket.

    Window totals (users since a moment) read :class:`SessionUserSeen` instead.
    """

    hour = models.DateTimeField()
    # The SDK's ``did`` as a UUID (UUIDv5 of the text when it is not one): no PII stored.
    did = models.UUIDField()

    class Meta:
        constraints: ClassVar = [
            models.UniqueConstraint(
                fields=["project", "release", "environment", "hour", "did"],
                name="unique_session_user",
            ),
        ]
        indexes: ClassVar = [
            models.Index(fields=["project", "hour"], name="session_user_project_hour"),
            models.Index(fields=["release", "project", "hour"], name="session_user_release"),
        ]

    def __str__(self) -> str:
        return str(self.did)


class SessionUserSeen(PerReleaseEnvironment):
    """The latest hour in which a did started a session, per project, release and environment.

    Every window ends now, so the distinct users of a window starting at ``T`` are exactly the
    dids with ``last_hour >= T``, and its crashed users those with ``last_crashed_hour >= T``
    (the latest hour of a crashed session; NULL when none crashed): one index range scan over
    at most one row per user, instead of one row per user and hour.
    """

    did = models.UUIDField()
    last_hour = models.DateTimeField()
    last_crashed_hour = models.DateTimeField(null=True, blank=True)
    # The values the two above had before the row's latest upsert changed them (NULL: it
    # inserted the row). Only that upsert reads them, through its RETURNING, to move the counts
    # of :class:`SessionUserLast` from the old hours to the new (docs/health.md §9.3).
    prev_last_hour = models.DateTimeField(null=True, blank=True)
    prev_last_crashed_hour = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints: ClassVar = [
            models.UniqueConstraint(
                fields=["project", "release", "environment", "did"],
                name="unique_session_user_seen",
            ),
        ]
        indexes: ClassVar = [
            models.Index(
                fields=["release", "project", "last_hour"],
                include=["environment", "did", "last_crashed_hour"],
                name="session_user_seen_release",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.did} @ {self.last_hour}"


class ReleaseUserSeen(models.Model):
    """The latest hour in which a did started a session (and a crashed one) in a project and
    release, whatever the environment: :class:`SessionUserSeen` without the environment.

    Written by the same statement as :class:`SessionUserSeen`; read by nobody but its own
    upsert, which keeps the counts of :class:`ReleaseUserLast` (users of all environments, a
    did seen in two of them counting once).
    """

    # The unique constraint leads with release (the cascade of a release's deletion uses it);
    # no other index: each costs every ingested user a write.
    project = _per_row_key(Project)
    release = _per_row_key(Release)
    did = models.UUIDField()
    last_hour = models.DateTimeField()
    last_crashed_hour = models.DateTimeField(null=True, blank=True)
    # As in SessionUserSeen: the values the latest upsert replaced.
    prev_last_hour = models.DateTimeField(null=True, blank=True)
    prev_last_crashed_hour = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints: ClassVar = [
            models.UniqueConstraint(
                fields=["release", "project", "did"], name="unique_release_user_seen"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.did} @ {self.last_hour}"


class SessionUserLast(PerReleaseEnvironment):
    """How many dids have their latest hour here, per project, release, environment and hour.

    ``users`` counts the :class:`SessionUserSeen` rows whose ``last_hour`` is ``hour``,
    ``crashed`` those whose ``last_crashed_hour`` is. So the users of a window starting at
    ``T`` (every window ends now) are ``SUM(users)`` over the hours ``>= T``, exactly, and its
    crashed users ``SUM(crashed)``: one row per hour instead of one per user. Kept by the
    statement that upserts the seen rows (``releases.health.sql.Tally``, docs/health.md §9.3);
    a count may be 0 (every did of the hour was seen again later).
    """

    hour = models.DateTimeField()
    users = models.BigIntegerField(default=0)
    crashed = models.BigIntegerField(default=0)

    class Meta:
        constraints: ClassVar = [
            # Leads with release: the reads filter release ids, and a release's deletion too.
            models.UniqueConstraint(
                fields=["release", "project", "environment", "hour"],
                name="unique_session_user_last",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.users} users, {self.crashed} crashed @ {self.hour}"


class ReleaseUserLast(models.Model):
    """:class:`SessionUserLast` of all environments: per project, release and hour, how many
    :class:`ReleaseUserSeen` rows have their latest (crashed) hour there. What the users of
    a query without an environment filter sum."""

    project = _per_row_key(Project)
    release = _per_row_key(Release)
    hour = models.DateTimeField()
    users = models.BigIntegerField(default=0)
    crashed = models.BigIntegerField(default=0)

    class Meta:
        constraints: ClassVar = [
            models.UniqueConstraint(
                fields=["release", "project", "hour"], name="unique_release_user_last"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.users} users, {self.crashed} crashed @ {self.hour}"


class ProjectUserSeen(models.Model):
    """The latest hour in which a did started a session in a project and environment.

    Distinct users of the whole project since ``T`` (adoption's denominator) are the dids
    with ``last_hour >= T``, whatever the releases they used.
    """

    # As above: the unique constraint leads with project; no index for environment.
    project = _per_row_key(Project)
    environment = _per_row_key(Environment)
    did = models.UUIDField()
    last_hour = models.DateTimeField()

    class Meta:
        constraints: ClassVar = [
            models.UniqueConstraint(
                fields=["project", "environment", "did"], name="unique_project_user_seen"
            ),
        ]
        indexes: ClassVar = [
            models.Index(
                fields=["project", "last_hour"],
                include=["environment", "did"],
                name="project_user_seen_hour",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.did} @ {self.last_hour}"


class SessionDuration(PerReleaseEnvironment):
    """How many exited sessions fell in a duration bucket, per project, release, env and hour.

    ``duration_ms`` is the bucket's value, within 1 % of every duration in it
    (``releases.health.sketch``, docs/health.md §9.2). Percentiles of a window read these rows
    only for the hours of the window's first day; the whole days come from
    :class:`SessionDurationDay`.
    """

    hour = models.DateTimeField()
    duration_ms = models.BigIntegerField()
    count = models.BigIntegerField(default=0)

    class Meta:
        constraints: ClassVar = [
            models.UniqueConstraint(
                fields=["project", "release", "environment", "hour", "duration_ms"],
                name="unique_session_duration",
            ),
        ]
        indexes: ClassVar = [
            models.Index(
                fields=["release", "project", "hour"],
                include=["environment", "duration_ms", "count"],
                name="session_duration_release",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.duration_ms} ms x {self.count}"


class SessionDurationDay(PerReleaseEnvironment):
    """:class:`SessionDuration`'s counts summed per UTC day (``day``: the sessions' start).

    Written at ingest beside the hourly rows, in the same statement (docs/health.md §9.4). A
    window starting at hour ``S`` (windows always end now) reads the day rows of the days after
    ``S``'s day, and the hourly rows of ``S``'s day from ``S`` on (all of ``S``'s day from its
    row when ``S`` is midnight), so the rows it reads stop growing once a day holds every
    bucket, whatever the sessions.
    """

    day = models.DateField()
    duration_ms = models.BigIntegerField()
    count = models.BigIntegerField(default=0)

    class Meta:
        constraints: ClassVar = [
            models.UniqueConstraint(
                fields=["project", "release", "environment", "day", "duration_ms"],
                name="unique_session_duration_day",
            ),
        ]
        indexes: ClassVar = [
            models.Index(
                fields=["release", "project", "day"],
                include=["environment", "duration_ms", "count"],
                name="session_duration_day_release",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.day}: {self.duration_ms} ms x {self.count}"


class ErroredSession(models.Model):
    """Sids already counted as errored, so that each errored session counts once."""

    # No index for project: the unique constraint leads with it. Release keeps its index
    # (a release's deletion finds its rows by it).
    project = _per_row_key(Project)
    release = _per_row_key(Release, db_index=True)
    sid = models.UUIDField()
    hour = models.DateTimeField()

    class Meta:
        constraints: ClassVar = [
            models.UniqueConstraint(
                fields=["project", "release", "sid"], name="unique_errored_session"
            ),
        ]

    def __str__(self) -> str:
        return str(self.sid)


class SessionUpdateKey(models.Model):
    """Digests of individual session updates already stored: duplicate deliveries count once.

    Updates older than five days are refused anyway, so older keys can be pruned.

    Every ingested update inserts one row, so the row costs as little as it can: the key is the
    primary key (no ``id`` and its index), ``project`` is a :func:`_per_row_key`, and
    ``received`` has a BRIN index on PostgreSQL (rows arrive in its order), a B-tree elsewhere,
    made by migration 0012 outside Django's model state (docs/performance.md §6.6).
    """

    pk = models.CompositePrimaryKey("project", "key")
    project = _per_row_key(Project)
    key = models.UUIDField()
    received = models.DateTimeField()

    def __str__(self) -> str:
        return str(self.key)


class IngestOutcome(models.Model):
    """Items the envelope endpoint dropped, per project, day, category and reason."""

    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="+")
    day = models.DateField()
    category = models.CharField(max_length=16)
    reason = models.CharField(max_length=32)
    quantity = models.BigIntegerField(default=0)

    class Meta:
        constraints: ClassVar = [
            models.UniqueConstraint(
                fields=["project", "day", "category", "reason"], name="unique_ingest_outcome"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.day} {self.category}/{self.reason}: {self.quantity}"


class AdoptionTick(models.Model):
    """When adoption stages were last refreshed for an organization (the throttle)."""

    organization = models.OneToOneField(
        Organization, on_delete=models.CASCADE, related_name="+", primary_key=True
    )
    last_run = models.DateTimeField()

    def __str__(self) -> str:
        return f"{self.organization_id} @ {self.last_run}"


class JobRun(models.Model):
    """One row per background job: when it last started and who holds it now."""

    name = models.CharField(max_length=64, primary_key=True)
    last_run = models.DateTimeField(null=True, blank=True, help_text="Start of the last run.")
    last_finished = models.DateTimeField(null=True, blank=True)
    # A claim stops other workers until this moment, or until the run ends (reset to null).
    locked_until = models.DateTimeField(null=True, blank=True)
    last_result = models.CharField(max_length=500, blank=True)

    def __str__(self) -> str:
        return f"{self.name} @ {self.last_run}"
