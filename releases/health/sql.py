"""The bulk writes that the ORM cannot express: additive upserts and insert-if-new.

``INSERT … ON CONFLICT`` with ``EXCLUDED`` and ``RETURNING`` is spelled the same on PostgreSQL
and on SQLite (3.35+). Only the way the rows reach the server differs, and that lives in one
function, :func:`_statements`: PostgreSQL gets one array literal per column (``unnest``), so a
whole batch is one statement with a handful of parameters; SQLite gets ``VALUES`` lists. On
PostgreSQL, an upsert of ``latest`` values also leaves out the rows already current, which
``ON CONFLICT`` would lock (:func:`_unless_current`). An upsert may keep counts of its rows'
values in the same statement (:class:`Tally`). Tests run both (``tests/test_sql.py``).
"""

from __future__ import annotations

import datetime
import sqlite3
import uuid
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from functools import lru_cache
from operator import itemgetter
from typing import Any

from django.db import NotSupportedError, connection, models

#: Rows per statement. PostgreSQL takes one parameter per column whatever the row count;
#: SQLite takes one per value and allows 32,766 of them.
BATCH = {"postgresql": 50_000, "sqlite": 2_000}
DEFAULT_BATCH = 500
#: Values that psycopg adapts as they are, so PostgreSQL skips Django's per-value preparation.
_NATIVE = (int, str, uuid.UUID, datetime.datetime, datetime.date)

Row = Sequence[Any]


def _fields(model: type[models.Model], names: Sequence[str]) -> list[models.Field]:
    return [model._meta.get_field(name.removesuffix("_id")) for name in names]  # type: ignore[misc]


def _column(field: models.Field) -> str:
    assert field.column is not None  # concrete fields only  # noqa: S101
    return connection.ops.quote_name(field.column)


def _prep(field: models.Field, value: Any) -> Any:
    if isinstance(field, models.ForeignKey):
        field = field.target_field
    return field.get_db_prep_save(value, connection)


def _array_item(value: Any) -> str:
    """One element of a PostgreSQL array literal."""
    if value is None:
        return "NULL"
    kind = type(value)
    if kind is int or kind is uuid.UUID:
        return str(value)
    if kind is datetime.datetime or kind is datetime.date:
        return value.isoformat()
    if kind is bool:
        return "t" if value else "f"
    text = str(value).replace("\\", "\\\\").replace('"', '\\"')
    return f'"{text}"'


def _plain(text: str) -> bool:
    """Text that an array literal's quoted element holds as it is (no quote, no backslash)."""
    return '"' not in text and "\\" not in text


def _array(values: Sequence[Any]) -> str:
    """A PostgreSQL array literal of one column's values: the common columns (all ids, UUIDs,
    times or text) without a call per value."""
    kinds = set(map(type, values))
    if kinds == {uuid.UUID}:
        # Without hyphens, which PostgreSQL's uuid input accepts: a third of ``str``'s time.
        items = ",".join([value.hex for value in values])
    elif kinds <= {int, uuid.UUID}:
        items = ",".join(map(str, values))
    elif kinds == {datetime.datetime}:
        texts = {value: value.isoformat() for value in set(values)}
        items = ",".join([texts[value] for value in values])
    elif kinds == {str} and _plain("".join(values)):
        items = '"' + '","'.join(values) + '"'  # none to escape: all quoted at once
    else:
        items = ",".join(map(_array_item, values))
    return "{" + items + "}"


def _sorted(rows: Sequence[Row], keys: int) -> list[Row]:
    """Rows in the order of their first ``keys`` values. UUIDs by their number: the order their
    own comparisons give, without a Python call per comparison; other values (ids, times,
    text) compared as they are, with a key made in C."""
    if not rows or not any(type(v) is uuid.UUID for v in rows[0][:keys]):
        return sorted(rows, key=itemgetter(*range(keys)))

    def key(row: Row) -> tuple[Any, ...]:
        return tuple([v.int if type(v) is uuid.UUID else v for v in row[:keys]])

    return sorted(rows, key=key)


@dataclass(frozen=True)
class _Insert:
    """What an ``INSERT`` of some columns of a model takes from its metadata, worked out once
    per model, columns and database (:func:`_insert`): the same few statements are written
    for every envelope."""

    fields: list[models.Field]
    table: str
    columns: str
    casts: str  # PostgreSQL: one array parameter per column


@lru_cache(maxsize=256)
def _insert(model: type[models.Model], names: tuple[str, ...], vendor: str) -> _Insert:
    fields = _fields(model, names)
    return _Insert(
        fields=fields,
        table=connection.ops.quote_name(model._meta.db_table),
        columns=", ".join(_column(f) for f in fields),
        casts=", ".join(f"%s::{f.db_type(connection)}[]" for f in fields),
    )


def _statements(
    model: type[models.Model],
    names: Sequence[str],
    rows: Sequence[Row],
    keys: int,
    *,
    whole: bool = False,
    unless: str = "",
) -> Iterator[tuple[str, list[Any], int]]:
    """``INSERT INTO <table> (<names>) …`` statements for ``rows`` (tuples in ``names`` order).

    The one database-specific function. Rows go in key order, so that concurrent writers lock
    rows in the same order. PostgreSQL gets one array literal per column (``unnest``): a batch
    is one statement with a handful of text parameters, which the server parses, instead of
    one parameter per value that the client adapts; elsewhere, ``VALUES`` lists. ``whole``:
    PostgreSQL gets all the rows in one statement, however many. ``unless`` (PostgreSQL): a
    scalar query on each new row (``incoming``, its columns by name); the rows for which it is
    true are not inserted (:func:`_unless_current`).
    """
    insert = _insert(model, tuple(names), connection.vendor)
    fields, table, column_list = insert.fields, insert.table, insert.columns
    size = BATCH.get(connection.vendor, DEFAULT_BATCH)
    if connection.vendor == "postgresql":
        if whole:
            size = max(size, len(rows))
        if not all(isinstance(v, _NATIVE) or v is None for row in rows[:1] for v in row):
            rows = [tuple(_prep(f, v) for f, v in zip(fields, row, strict=True)) for row in rows]
        ordered = _sorted(rows, keys)
        # Identifiers and types come from model metadata; values are parameters.
        sql = f"INSERT INTO {table} ({column_list}) SELECT * FROM unnest({insert.casts})"  # noqa: S608
        if unless:
            sql += f" AS incoming ({column_list}) WHERE NOT COALESCE(({unless}), false)"
        for start in range(0, len(ordered), size):
            batch = ordered[start : start + size]
            columns = zip(*batch, strict=True)
            yield sql, [_array(column) for column in columns], len(batch)
        return
    ordered = _sorted(rows, keys)
    placeholders = "(" + ", ".join(["%s"] * len(fields)) + ")"
    for start in range(0, len(ordered), size):
        batch = ordered[start : start + size]
        params = [
            _prep(field, value) for row in batch for field, value in zip(fields, row, strict=True)
        ]
        values = ", ".join([placeholders] * len(batch))
        yield f"INSERT INTO {table} ({column_list}) VALUES {values}", params, len(batch)  # noqa: S608


@dataclass(frozen=True)
class Then:
    """A statement that reads the rows its :class:`Statement` returns: ``sql`` names them
    ``{source}``, a relation of ``columns``. On PostgreSQL, a data-modifying ``WITH`` query
    on the statement's own (the same round trip); elsewhere, the next statement, the rows
    passed back as a ``VALUES`` list."""

    sql: str
    columns: tuple[str, ...]


@dataclass(frozen=True)
class Statement:
    """One ``INSERT`` of :func:`upsert_statements` or :func:`insert_new_statements`, with the
    field it returns (``RETURNING``), if any, or the statement that reads what it returns."""

    sql: str
    params: list[Any]
    rows: int
    returning: models.Field | None = None
    then: Then | None = None


@dataclass(frozen=True)
class Tally:
    """Counts, kept by an upsert of ``latest`` columns, of how many of its model's rows hold
    each value of those columns (docs/health.md §9.3).

    ``model`` counts per group, the upsert's first ``groups`` columns (the same field names in
    both models), and ``value``: a unique constraint on those fields, and one count field per
    ``latest`` column (``counts``, in the same order). Next to each ``latest`` column ``c``
    the upserted model has a nullable ``prev_c``: the upsert sets it to the value it replaces
    and returns both, so that each row it changes moves a count from its old value (if any)
    to its new one, in the same statement. The previous value is the one the upsert itself
    replaced, under the row's lock, so concurrent writers never move the same count twice.
    """

    model: type[models.Model]
    groups: int
    value: str
    counts: tuple[str, ...]


def upsert_statements(
    model: type[models.Model],
    columns: Sequence[str],
    rows: Sequence[Row],
    *,
    keys: int,
    add: Sequence[str] = (),
    latest: Sequence[str] = (),
    tally: Tally | None = None,
) -> list[Statement]:
    """The statements of :func:`upsert`, to run with :func:`execute_together`.

    With a ``tally``, PostgreSQL gets one statement whatever the rows: the counts are one
    ``INSERT`` of grouped moves, which may not touch a row that another ``INSERT`` of the
    same statement touches."""
    if not rows:
        return []
    key_names, vendor = tuple(columns[:keys]), connection.vendor
    conflict = _upsert_conflict(model, key_names, tuple(add), tuple(latest), vendor, tally)
    then = _tally_then(model, key_names, tuple(latest), tally, vendor) if tally else None
    unless = _unless_current(model, key_names, tuple(latest), vendor) if latest and not add else ""
    return [
        Statement(f"{sql} {conflict}", params, count, then=then)
        for sql, params, count in _statements(
            model, columns, rows, keys, whole=bool(tally), unless=unless
        )
    ]


@lru_cache(maxsize=256)
def _unless_current(
    model: type[models.Model], key_names: tuple[str, ...], latest: tuple[str, ...], vendor: str
) -> str:
    """PostgreSQL: whether the stored row of a ``latest`` upsert already holds values at least
    as late as the new row's (``incoming``), so that the upsert would leave it as it is; NULL
    when there is no stored row, or it must change.

    ``ON CONFLICT DO UPDATE … WHERE`` locks every conflicting row, updated or not: a row lock
    writes to the row's page and to the WAL. Most rows of steady ingestion are already current
    (a user's latest hour is this hour), so the upsert leaves them out before it inserts: an
    index probe that reads, where the conflict would lock (docs/performance.md §6.5). A scalar
    subquery, so that the planner probes the unique index row by row rather than hashing the
    whole table. Exact: stored values only grow, so a row current in the statement's snapshot
    stays current; a row that is not (or not yet visible) goes through ``ON CONFLICT`` as
    before."""
    if vendor != "postgresql":
        return ""
    table = connection.ops.quote_name(model._meta.db_table)
    same = [f"stored.{c} = incoming.{c}" for c in map(_column, _fields(model, key_names))]
    late = [
        f"(incoming.{c} IS NULL OR stored.{c} >= incoming.{c})"
        for c in map(_column, _fields(model, latest))
    ]
    return f"SELECT {' AND '.join(late)} FROM {table} AS stored WHERE {' AND '.join(same)}"  # noqa: S608


def _previous(field: models.Field) -> models.Field:
    """The ``prev_`` field of a tallied ``latest`` field (:class:`Tally`)."""
    return field.model._meta.get_field(f"prev_{field.name}")  # type: ignore[return-value]


@lru_cache(maxsize=256)
def _upsert_conflict(
    model: type[models.Model],
    key_names: tuple[str, ...],
    add: tuple[str, ...],
    latest: tuple[str, ...],
    vendor: str,
    tally: Tally | None = None,
) -> str:
    """The ``ON CONFLICT`` clause of :func:`upsert_statements` (worked out once, as
    :func:`_insert`); with a ``tally``, the rows it changes are returned (:func:`_tally_then`)."""
    table = connection.ops.quote_name(model._meta.db_table)
    key_columns = ", ".join(_column(f) for f in _fields(model, key_names))
    latest_fields = _fields(model, latest)
    merges = [f"{c} = {table}.{c} + EXCLUDED.{c}" for c in map(_column, _fields(model, add))]
    if tally is not None:
        # SET expressions read the stored row as it was: the values being replaced.
        merges += [f"{_column(_previous(f))} = {table}.{_column(f)}" for f in latest_fields]
    merges += [
        f"{c} = CASE WHEN EXCLUDED.{c} IS NULL OR {table}.{c} >= EXCLUDED.{c} "
        f"THEN {table}.{c} ELSE EXCLUDED.{c} END"
        for c in map(_column, latest_fields)
    ]
    action = f"DO UPDATE SET {', '.join(merges)}" if merges else "DO NOTHING"
    if merges and not add:
        # Only rewrite rows that change: fewer dead tuples and index entries (and, with a
        # tally, only changed rows returned).
        action += " WHERE " + " OR ".join(
            f"(EXCLUDED.{c} > {table}.{c} OR ({table}.{c} IS NULL AND EXCLUDED.{c} IS NOT NULL))"
            for c in map(_column, latest_fields)
        )
    clause = f"ON CONFLICT ({key_columns}) {action}"
    if tally is not None:
        clause += " RETURNING " + ", ".join(
            _column(f) for f in _returned(model, key_names, latest, tally)
        )
    return clause


def _returned(
    model: type[models.Model], key_names: tuple[str, ...], latest: tuple[str, ...], tally: Tally
) -> list[models.Field]:
    """What a tallied upsert returns: the group's fields, then each latest field and its
    previous value."""
    fields = _fields(model, key_names[: tally.groups])
    for field in _fields(model, latest):
        fields += [field, _previous(field)]
    return fields


@lru_cache(maxsize=256)
@lru_cache(maxsize=256)
def _tally_then(
    model: type[models.Model],
    key_names: tuple[str, ...],
    latest: tuple[str, ...],
    tally: Tally,
    vendor: str,
) -> Then:
    """The additive upsert of a :class:`Tally`'s counts from the rows its upsert returns
    (worked out once, as :func:`_upsert_conflict`).

    Each returned row is a move per latest column: +1 at the new value, -1 at the previous
    one; a column that did not change moves +1 and -1 at the same value, which cancel. Moves
    are summed per group and value and written in key order (concurrent writers lock the
    counts in the same order); sums of zero are not written."""
    if len(tally.counts) != len(latest):
        raise ValueError("a tally needs one count per latest column")
    if vendor == "sqlite" and sqlite3.sqlite_version_info < (3, 35):
        raise NotSupportedError("a tally needs SQLite 3.35 or later (RETURNING)")
    returned = [_column(f) for f in _returned(model, key_names, latest, tally)]
    groups = returned[: tally.groups]
    counts_model = tally.model
    counts_table = connection.ops.quote_name(counts_model._meta.db_table)
    group_columns = [_column(f) for f in _fields(counts_model, key_names[: tally.groups])]
    value = _column(counts_model._meta.get_field(tally.value))  # type: ignore[arg-type]
    counts = [_column(f) for f in _fields(counts_model, tally.counts)]
    names = ["g" + str(i) for i in range(len(groups))]
    moves = []
    for i, _ in enumerate(latest):
        new, old = returned[tally.groups + 2 * i], returned[tally.groups + 2 * i + 1]
        for column, sign in ((new, 1), (old, -1)):
            steps = ", ".join(f"{sign if j == i else 0} AS n{j}" for j in range(len(latest)))
            picked = ", ".join(f"{g} AS {n}" for g, n in zip(groups, names, strict=True))
            moves.append(f"SELECT {picked}, {column} AS v, {steps} FROM {{source}}")  # noqa: S608
    sums = ", ".join(f"SUM(n{j})" for j in range(len(latest)))
    nonzero = " OR ".join(f"SUM(n{j}) <> 0" for j in range(len(latest)))
    keys = ", ".join([*names, "v"])
    merges = ", ".join(f"{c} = {counts_table}.{c} + EXCLUDED.{c}" for c in counts)
    # Identifiers come from model metadata; the moves' rows from the statement's RETURNING.
    sql = (
        f"INSERT INTO {counts_table} ({', '.join([*group_columns, value, *counts])}) "  # noqa: S608
        f"SELECT {keys}, {sums} FROM ({' UNION ALL '.join(moves)}) AS moves "
        f"WHERE v IS NOT NULL GROUP BY {keys} HAVING {nonzero} ORDER BY {keys} "
        f"ON CONFLICT ({', '.join([*group_columns, value])}) DO UPDATE SET {merges}"
    )
    return Then(sql, tuple(returned))


def upsert(
    model: type[models.Model],
    columns: Sequence[str],
    rows: Sequence[Row],
    *,
    keys: int,
    add: Sequence[str] = (),
    latest: Sequence[str] = (),
    tally: Tally | None = None,
) -> None:
    """Insert ``rows``; where their key exists, merge them into the stored row.

    ``columns`` names the fields of each row tuple; the first ``keys`` of them are the fields
    of a unique constraint, unique within ``rows``. The ``add`` columns are added to the stored
    values, the ``latest`` ones keep the greater of the stored and new value (NULL loses);
    with neither, existing rows are left as they are. A ``tally`` (:class:`Tally`) counts the
    rows per value of the ``latest`` columns, in the same statement.
    """
    statements = upsert_statements(
        model, columns, rows, keys=keys, add=add, latest=latest, tally=tally
    )
    for statement in statements:
        execute_together([[statement]])


def insert_new_statements(
    model: type[models.Model],
    columns: Sequence[str],
    rows: Sequence[Row],
    *,
    keys: int,
    returning: str,
) -> list[Statement]:
    """The statements of :func:`insert_new`, to run with :func:`execute_together`."""
    if not rows:
        return []
    conflict, ret_field = _insert_new_conflict(
        model, tuple(columns[:keys]), returning, connection.vendor
    )
    return [
        Statement(f"{sql} {conflict}", params, count, ret_field)
        for sql, params, count in _statements(model, columns, rows, keys)
    ]


@lru_cache(maxsize=256)
def _insert_new_conflict(
    model: type[models.Model], key_names: tuple[str, ...], returning: str, vendor: str
) -> tuple[str, models.Field]:
    """The ``ON CONFLICT … RETURNING`` clause of :func:`insert_new_statements` and the field
    it returns (worked out once, as :func:`_insert`)."""
    key_columns = ", ".join(_column(f) for f in _fields(model, key_names))
    (ret_field,) = _fields(model, [returning])
    return f"ON CONFLICT ({key_columns}) DO NOTHING RETURNING {_column(ret_field)}", ret_field


def insert_new(
    model: type[models.Model],
    columns: Sequence[str],
    rows: Sequence[Row],
    *,
    keys: int,
    returning: str,
) -> set[Any]:
    """Insert the rows whose key (the first ``keys`` columns) is not stored yet.

    Returns their ``returning`` values. A row that a concurrent transaction inserts first is
    not returned (PostgreSQL waits for that transaction), so each value is reported by exactly
    one writer.
    """
    statements = insert_new_statements(model, columns, rows, keys=keys, returning=returning)
    (found,) = execute_together([statements])
    return found


def execute_together(groups: Sequence[Sequence[Statement]]) -> list[set[Any]]:
    """Run groups of statements, in order; per group, the values its statements return.

    On PostgreSQL all of them are one statement, each a data-modifying ``WITH`` query, so the
    whole lot costs one round trip: they see the same snapshot and none sees another's rows,
    so only statements that do not depend on each other may go together; a statement's
    :class:`Then` is one more ``WITH`` query, which reads what the statement returns. Elsewhere
    they run one after the other, each ``Then`` after its statement.
    """
    found: list[set[Any]] = [set() for _ in groups]
    flat = [(index, s) for index, group in enumerate(groups) for s in group]
    if not flat:
        return found
    with connection.cursor() as cursor:
        if connection.vendor != "postgresql" or (len(flat) == 1 and flat[0][1].then is None):
            for index, statement in flat:
                cursor.execute(statement.sql, statement.params)
                if statement.returning is not None:
                    to_python = statement.returning.to_python
                    found[index].update(to_python(value) for (value,) in cursor.fetchall())
                elif statement.then is not None:
                    _then(cursor, statement.then, cursor.fetchall())
            return found
        parts = ", ".join(
            f"w{n} AS ({s.sql})"
            + (f", w{n}t AS ({s.then.sql.format(source=f'w{n}')})" if s.then else "")
            for n, (_, s) in enumerate(flat)
        )
        outputs = [
            f"ARRAY(SELECT * FROM w{n})"  # noqa: S608 - names of our own WITH queries
            for n, (_, s) in enumerate(flat)
            if s.returning is not None
        ]
        params = [value for _, s in flat for value in s.params]
        cursor.execute(f"WITH {parts} SELECT {', '.join(outputs) or '1'}", params)
        row = cursor.fetchone()
    returning = [(index, s) for index, s in flat if s.returning is not None]
    for (index, statement), values in zip(returning, row or (), strict=False):
        found[index].update(statement.returning.to_python(value) for value in values)  # type: ignore[union-attr]
    return found


def _then(cursor: Any, then: Then, rows: Sequence[Row]) -> None:
    """Run ``then`` on the rows its statement returned (not PostgreSQL: see :class:`Then`).
    The rows go back as the database gave them."""
    if not rows:
        return
    placeholders = "(" + ", ".join(["%s"] * len(then.columns)) + ")"
    for start in range(0, len(rows), DEFAULT_BATCH):
        batch = rows[start : start + DEFAULT_BATCH]
        values = ", ".join([placeholders] * len(batch))
        source = f"returned ({', '.join(then.columns)}) AS (VALUES {values})"
        params = [value for row in batch for value in row]
        cursor.execute(f"WITH {source} {then.sql.format(source='returned')}", params)
