"""Fixed-window rate limits that every worker and machine share (docs/reliability.md).

``hit(scope, ident, rate)`` counts one request and says how long to wait once the window's
limit is passed. On PostgreSQL the counters are rows of :class:`RateLimitWindow`, each hit one
``INSERT … ON CONFLICT DO UPDATE … RETURNING`` (atomic, one query; ``hit_many`` counts several
limits, such as an API call's token and address, in that one statement); on SQLite, where a write on
every read would take the write lock, they live in the ``ratelimit`` cache (process memory
unless ``RATELIMIT_CACHE_URL`` names a shared one).
"""

from __future__ import annotations

import random
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.core.cache import caches
from django.db import connection
from rest_framework.throttling import BaseThrottle

from .models import RateLimitWindow

PERIODS = {"s": 1, "m": 60, "h": 3600, "d": 86400}
#: The scope of failed authentications (401 answers) per client address.
AUTH_FAILURES = "auth_failure_address"
AUTH_FAILURES_DETAIL = "Too many failed authentication attempts; retry later."
# One hit in this many also deletes windows that ended a day ago or more.
PRUNE_ONE_IN = 1000


@dataclass(frozen=True)
class Rate:
    limit: int
    window: int


def parse_rate(text: str | None) -> Rate | None:
    """``"1200/min"`` → ``Rate(1200, 60)`` (DRF's notation: s, min, hour, day); empty or
    ``off`` → ``None``, no limit."""
    if not text or text.strip().lower() in {"off", "none", "0"}:
        return None
    count, _, period = text.strip().partition("/")
    return Rate(int(count), PERIODS[period.strip()[:1].lower()])


def rate(scope: str) -> Rate | None:
    """The configured rate of ``scope`` (``RATE_LIMITS``, read at each call)."""
    return parse_rate(settings.RATE_LIMITS.get(scope))


def _window(rate: Rate) -> tuple[int, int]:
    """The current window's start and the seconds left in it."""
    now = int(time.time())
    start = now - now % rate.window
    return start, max(1, start + rate.window - now)


def _key(scope: str, ident: str) -> str:
    return f"{scope}:{ident}"[:200]


_UPSERT = (
    "INSERT INTO {table} (key, window_start, count) VALUES {rows} "
    "ON CONFLICT (key, window_start) DO UPDATE SET count = {table}.count + 1 "
    "RETURNING key, window_start, count"
)


def _in_database() -> bool:
    return settings.RATELIMIT_STORE == "database"


def hit(scope: str, ident: str, rate: Rate) -> int | None:
    """Counts one request; the seconds until the window ends when it is over the limit."""
    return hit_many([(scope, ident, rate)])


def hit_many(limits: Sequence[tuple[str, str, Rate]]) -> int | None:
    """Counts one request against each ``(scope, ident, rate)``: one statement on PostgreSQL.

    The longest wait of the limits passed, or None when none is.
    """
    windows = {}
    for scope, ident, limit in limits:
        start, remaining = _window(limit)
        windows[(_key(scope, ident), start)] = (limit, remaining)
    if not windows:
        return None
    counts: dict[tuple[str, int], int] = {}
    if _in_database():
        table = connection.ops.quote_name(RateLimitWindow._meta.db_table)
        rows = ", ".join(["(%s, %s, 1)"] * len(windows))
        params = [value for window in windows for value in window]
        with connection.cursor() as cursor:
            cursor.execute(_UPSERT.format(table=table, rows=rows), params)
            counts = {(key, start): count for key, start, count in cursor.fetchall()}
        if random.randrange(PRUNE_ONE_IN) == 0:  # noqa: S311 - not for security
            oldest = min(start for _, start in windows)
            RateLimitWindow.objects.filter(window_start__lt=oldest - 86400).delete()
    else:
        cache = caches[settings.RATELIMIT_CACHE]
        for (key, start), (limit, _) in windows.items():
            cache_key = f"rl:{key}:{start}"
            cache.add(cache_key, 0, timeout=limit.window + 1)
            try:
                counts[(key, start)] = cache.incr(cache_key)
            except ValueError:  # expired between add and incr
                cache.set(cache_key, 1, timeout=limit.window + 1)
                counts[(key, start)] = 1
    waits = [
        remaining
        for window, (limit, remaining) in windows.items()
        if counts.get(window, 0) > limit.limit
    ]
    return max(waits, default=None)


def in_database() -> bool:
    """Whether counts live in the database (PostgreSQL deployments), so that
    :func:`hit_many_if` can be used."""
    return _in_database()


@dataclass(frozen=True)
class Guarded:
    """What :func:`hit_many_if` found: whether the condition held, the wait of the block (or
    None), per scope of ``limits`` the wait (None: under the limit, or not counted), and the
    row of the ``also`` query (None without one)."""

    condition: bool
    blocked: int | None
    waits: dict[str, int | None]
    also: tuple[Any, ...] | None = None


_GUARDED = (
    "WITH guard AS (SELECT ({condition}) AS ok, "
    "(SELECT count FROM {table} WHERE key = %s AND window_start = %s) AS failures), "
    "hit AS (INSERT INTO {table} (key, window_start, count) "
    "SELECT v.key, v.window_start, 1 FROM (VALUES {rows}) AS v (key, window_start), guard "
    "WHERE guard.ok AND COALESCE(guard.failures, 0) < %s ORDER BY 1, 2 "
    "ON CONFLICT (key, window_start) DO UPDATE SET count = {table}.count + 1 "
    "RETURNING key, window_start, count) "
    "SELECT guard.ok, guard.failures, hit.key, hit.window_start, hit.count{also_columns} "
    "FROM guard LEFT JOIN hit ON TRUE{also_join}"
)


def hit_many_if(
    limits: Sequence[tuple[str, str, Rate]],
    *,
    condition: tuple[str, Sequence[Any]],
    unless_blocked: tuple[str, str, Rate | None],
    also: tuple[str, Sequence[Any]] | None = None,
) -> Guarded:
    """:func:`hit_many` in the same statement as two checks that come first: the ``blocked``
    check of ``unless_blocked`` (no rate: never blocked) and ``condition``, an SQL boolean
    expression with its parameters (the caller's own check, such as a key's validity).
    Nothing is counted unless the condition holds and the address is not blocked.

    ``also`` is a query of the caller's (SQL and parameters; at most one row, whose first
    column is never NULL) read in the same statement: its row is ``Guarded.also``, NULLs when
    it found none. It is read whatever the checks find; using it is the caller's decision.

    One statement; the database store only (:func:`in_database`).
    """
    block_scope, block_ident, block_rate = unless_blocked
    block_start, block_remaining = _window(block_rate) if block_rate else (0, 0)
    windows = {}
    for scope, ident, limit in limits:
        start, remaining = _window(limit)
        windows[(_key(scope, ident), start)] = (scope, limit, remaining)
    table = connection.ops.quote_name(RateLimitWindow._meta.db_table)
    condition_sql, condition_params = condition
    sql = _GUARDED.format(
        condition=condition_sql,
        table=table,
        # No limit configured: an empty set of windows, so that only the checks run.
        rows=", ".join(["(%s, %s::bigint)"] * len(windows)) or "(NULL, NULL::bigint) LIMIT 0",
        also_columns=", also.*" if also else "",
        also_join=f" LEFT JOIN ({also[0]}) AS also ON TRUE" if also else "",
    )
    params = [
        *condition_params,
        _key(block_scope, block_ident),
        block_start,
        *(value for window in windows for value in window),
        block_rate.limit if block_rate else 2**62,
        *(also[1] if also else ()),
    ]
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        rows = cursor.fetchall()
    ok, failures = bool(rows[0][0]), rows[0][1]
    blocked = block_remaining if block_rate and (failures or 0) >= block_rate.limit else None
    counts = {(key, start): count for _, _, key, start, count, *_ in rows if key is not None}
    waits: dict[str, int | None] = {}
    for window, (scope, limit, remaining) in windows.items():
        over = counts.get(window, 0) > limit.limit
        waits[scope] = remaining if over else None
    if counts and random.randrange(PRUNE_ONE_IN) == 0:  # noqa: S311 - not for security
        oldest = min(start for _, start in windows)
        RateLimitWindow.objects.filter(window_start__lt=oldest - 86400).delete()
    return Guarded(ok, blocked, waits, tuple(rows[0][5:]) if also else None)


def count(scope: str, ident: str, rate: Rate) -> int:
    """Requests counted in the current window (what :func:`hit` compares with the limit)."""
    start, _ = _window(rate)
    key = _key(scope, ident)
    if _in_database():
        found = RateLimitWindow.objects.filter(key=key, window_start=start).values_list(
            "count", flat=True
        )
        return next(iter(found), 0)
    return int(caches[settings.RATELIMIT_CACHE].get(f"rl:{key}:{start}", 0))


def blocked(scope: str, ident: str, rate: Rate) -> int | None:
    """Like :func:`hit`, without counting."""
    _, remaining = _window(rate)
    return remaining if count(scope, ident, rate) >= rate.limit else None


def client_address(request: Any) -> str:
    """The client's address as DRF's throttles see it (``NUM_PROXIES`` behind proxies)."""
    return str(BaseThrottle().get_ident(request))


def clear() -> None:
    """Forget every count (tests)."""
    if _in_database():
        RateLimitWindow.objects.all().delete()
    else:
        caches[settings.RATELIMIT_CACHE].clear()
