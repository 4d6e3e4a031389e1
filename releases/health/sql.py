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
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
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


def _sort_key(keys: int) -> Callable[[Row], tuple[Any, ...]]:
    """The order of rows by their first ``keys`` values, UUIDs by their number: the order
    ``UUID``'s own comparisons give, without a Python call per comparison."""

    def key(row: Row) -> tuple[Any, ...]:
        return tuple([v.int if type(v) is uuid.UUID else v for v in row[:keys]])

    return key


def _statements(
    model: type[models.Model], names: Sequence[str], rows: Sequence[Row], keys: int
) -> Iterator[tuple[str, list[Any], int]]:
    """``INSERT INTO <table> (<names>) …`` statements for ``rows`` (tuples in ``names`` order).

    The one database-specific function. Rows go in key order, so that concurrent writers lock
    rows in the same order. PostgreSQL gets one array literal per column (``unnest``): a batch
    is one statement with a handful of text parameters, which the server parses, instead of
    one parameter per value that the client adapts; elsewhere, ``VALUES`` lists.
    """
    fields = _fields(model, names)
    table = connection.ops.quote_name(model._meta.db_table)
    column_list = ", ".join(_column(f) for f in fields)
    size = BATCH.get(connection.vendor, DEFAULT_BATCH)
    if connection.vendor == "postgresql":
        if not all(isinstance(v, _NATIVE) or v is None for row in rows[:1] for v in row):
            rows = [tuple(_prep(f, v) for f, v in zip(fields, row, strict=True)) for row in rows]
        ordered = sorted(rows, key=_sort_key(keys))
        casts = ", ".join(f"%s::{f.db_type(connection)}[]" for f in fields)
        # Identifiers and types come from model metadata; values are parameters.
        sql = f"INSERT INTO {table} ({column_list}) SELECT * FROM unnest({casts})"  # noqa: S608
        for start in range(0, len(ordered), size):
            batch = ordered[start : start + size]
            columns = zip(*batch, strict=True)
            yield sql, [_array(column) for column in columns], len(batch)
        return
    ordered = sorted(rows, key=_sort_key(keys))
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
    table = connection.ops.quote_name(model._meta.db_table)
    key_columns = ", ".join(_column(f) for f in _fields(model, columns[:keys]))
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
    return [
        Statement(f"{sql} ON CONFLICT ({key_columns}) {action}", params, count)
        for sql, params, count in _statements(model, columns, rows, keys)
    ]


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
    fields = _fields(model, columns)
    key_columns = ", ".join(_column(f) for f in fields[:keys])
    (ret_field,) = _fields(model, [returning])
    return [
        Statement(
            f"{sql} ON CONFLICT ({key_columns}) DO NOTHING RETURNING {_column(ret_field)}",
            params,
            count,
            ret_field,
        )
        for sql, params, count in _statements(model, columns, rows, keys)
    ]


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
