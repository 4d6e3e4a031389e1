"""The bulk writes that the ORM cannot express: additive upserts and insert-if-new.

``INSERT … ON CONFLICT`` with ``EXCLUDED`` and ``RETURNING`` is spelled the same on PostgreSQL
and on SQLite (3.35+). Only the way the rows reach the server differs, and that lives in one
function, :func:`_statements`: PostgreSQL gets one array literal per column (``unnest``), so a
whole batch is one statement with a handful of parameters; SQLite gets ``VALUES`` lists. Tests
run both (``tests/test_sql.py``).
"""

from __future__ import annotations

import datetime
import uuid
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from functools import lru_cache
from operator import itemgetter
from typing import Any

from django.db import connection, models

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
    if kinds <= {int, uuid.UUID}:
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
    model: type[models.Model], names: Sequence[str], rows: Sequence[Row], keys: int
) -> Iterator[tuple[str, list[Any], int]]:
    """``INSERT INTO <table> (<names>) …`` statements for ``rows`` (tuples in ``names`` order).

    The one database-specific function. Rows go in key order, so that concurrent writers lock
    rows in the same order. PostgreSQL gets one array literal per column (``unnest``): a batch
    is one statement with a handful of text parameters, which the server parses, instead of
    one parameter per value that the client adapts; elsewhere, ``VALUES`` lists.
    """
    insert = _insert(model, tuple(names), connection.vendor)
    fields, table, column_list = insert.fields, insert.table, insert.columns
    size = BATCH.get(connection.vendor, DEFAULT_BATCH)
    if connection.vendor == "postgresql":
        if not all(isinstance(v, _NATIVE) or v is None for row in rows[:1] for v in row):
            rows = [tuple(_prep(f, v) for f, v in zip(fields, row, strict=True)) for row in rows]
        ordered = _sorted(rows, keys)
        # Identifiers and types come from model metadata; values are parameters.
        sql = f"INSERT INTO {table} ({column_list}) SELECT * FROM unnest({insert.casts})"  # noqa: S608
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
class Statement:
    """One ``INSERT`` of :func:`upsert_statements` or :func:`insert_new_statements`, with the
    field it returns (``RETURNING``), if any."""

    sql: str
    params: list[Any]
    rows: int
    returning: models.Field | None = None


def upsert_statements(
    model: type[models.Model],
    columns: Sequence[str],
    rows: Sequence[Row],
    *,
    keys: int,
    add: Sequence[str] = (),
    latest: Sequence[str] = (),
) -> list[Statement]:
    """The statements of :func:`upsert`, to run with :func:`execute_together`."""
    if not rows:
        return []
    conflict = _upsert_conflict(
        model, tuple(columns[:keys]), tuple(add), tuple(latest), connection.vendor
    )
    return [
        Statement(f"{sql} {conflict}", params, count)
        for sql, params, count in _statements(model, columns, rows, keys)
    ]


@lru_cache(maxsize=256)
def _upsert_conflict(
    model: type[models.Model],
    key_names: tuple[str, ...],
    add: tuple[str, ...],
    latest: tuple[str, ...],
    vendor: str,
) -> str:
    """The ``ON CONFLICT`` clause of :func:`upsert_statements` (worked out once, as
    :func:`_insert`)."""
    table = connection.ops.quote_name(model._meta.db_table)
    key_columns = ", ".join(_column(f) for f in _fields(model, key_names))
    merges = [f"{c} = {table}.{c} + EXCLUDED.{c}" for c in map(_column, _fields(model, add))]
    merges += [
        f"{c} = CASE WHEN EXCLUDED.{c} IS NULL OR {table}.{c} >= EXCLUDED.{c} "
        f"THEN {table}.{c} ELSE EXCLUDED.{c} END"
        for c in map(_column, _fields(model, latest))
    ]
    action = f"DO UPDATE SET {', '.join(merges)}" if merges else "DO NOTHING"
    if merges and not add:
        # Only rewrite rows that change: fewer dead tuples and index entries.
        action += " WHERE " + " OR ".join(
            f"(EXCLUDED.{c} > {table}.{c} OR ({table}.{c} IS NULL AND EXCLUDED.{c} IS NOT NULL))"
            for c in map(_column, _fields(model, latest))
        )
    return f"ON CONFLICT ({key_columns}) {action}"


def upsert(
    model: type[models.Model],
    columns: Sequence[str],
    rows: Sequence[Row],
    *,
    keys: int,
    add: Sequence[str] = (),
    latest: Sequence[str] = (),
) -> None:
    """Insert ``rows``; where their key exists, merge them into the stored row.

    ``columns`` names the fields of each row tuple; the first ``keys`` of them are the fields
    of a unique constraint, unique within ``rows``. The ``add`` columns are added to the stored
    values, the ``latest`` ones keep the greater of the stored and new value (NULL loses);
    with neither, existing rows are left as they are.
    """
    statements = upsert_statements(model, columns, rows, keys=keys, add=add, latest=latest)
    with connection.cursor() as cursor:
        for statement in statements:
            cursor.execute(statement.sql, statement.params)


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
    so only statements that do not depend on each other may go together. Elsewhere they run
    one after the other.
    """
    found: list[set[Any]] = [set() for _ in groups]
    flat = [(index, s) for index, group in enumerate(groups) for s in group]
    if not flat:
        return found
    with connection.cursor() as cursor:
        if connection.vendor != "postgresql" or len(flat) == 1:
            for index, statement in flat:
                cursor.execute(statement.sql, statement.params)
                if statement.returning is not None:
                    to_python = statement.returning.to_python
                    found[index].update(to_python(value) for (value,) in cursor.fetchall())
            return found
        parts = ", ".join(f"w{n} AS ({s.sql})" for n, (_, s) in enumerate(flat))
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
