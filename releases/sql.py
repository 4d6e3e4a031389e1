"""The two bulk writes that the ORM cannot express: additive upserts and insert-if-new.

``INSERT … ON CONFLICT`` with ``EXCLUDED`` and ``RETURNING`` is spelled the same on PostgreSQL
and on SQLite (3.35+), so this is the one place with hand-written SQL; tests run it on both.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from django.db import connection, models

BATCH = 500


def _columns(model: type[models.Model], names: Iterable[str]) -> list[tuple[str, models.Field]]:
    fields = []
    for name in names:
        field = model._meta.get_field(name.removesuffix("_id"))
        fields.append((connection.ops.quote_name(field.column), field))  # type: ignore[union-attr]
    return fields


def _prep(field: models.Field, value: Any) -> Any:
    if isinstance(field, models.ForeignKey):
        field = field.target_field
    return field.get_db_prep_save(value, connection)


def _insert_sql(
    model: type[models.Model], names: Sequence[str], rows: Sequence[dict[str, Any]]
) -> tuple[str, list[Any]]:
    columns = _columns(model, names)
    table = connection.ops.quote_name(model._meta.db_table)
    placeholders = "(" + ", ".join(["%s"] * len(columns)) + ")"
    params = [
        _prep(field, row[name])
        for row in rows
        for name, (_, field) in zip(names, columns, strict=True)
    ]
    # Identifiers come from model metadata and are quoted; values are parameters.
    column_list = ", ".join(c for c, _ in columns)
    values = ", ".join([placeholders] * len(rows))
    sql = f"INSERT INTO {table} ({column_list}) VALUES {values}"  # noqa: S608
    return sql, params


def upsert_add(
    model: type[models.Model],
    rows: Sequence[dict[str, Any]],
    *,
    keys: Sequence[str],
    add: Sequence[str],
) -> None:
    """Insert ``rows``; where ``keys`` already exist, add the ``add`` columns to the stored ones.

    ``keys`` must be the fields of a unique constraint and unique within ``rows``. Rows are
    written in key order so that concurrent writers lock rows in the same order.
    """
    if not rows:
        return
    names = [*keys, *add]
    table = connection.ops.quote_name(model._meta.db_table)
    key_columns = ", ".join(c for c, _ in _columns(model, keys))
    updates = ", ".join(f"{c} = {table}.{c} + EXCLUDED.{c}" for c, _ in _columns(model, add))
    ordered = sorted(rows, key=lambda row: tuple(str(row[k]) for k in keys))
    with connection.cursor() as cursor:
        for start in range(0, len(ordered), BATCH):
            sql, params = _insert_sql(model, names, ordered[start : start + BATCH])
            cursor.execute(f"{sql} ON CONFLICT ({key_columns}) DO UPDATE SET {updates}", params)


def insert_new(
    model: type[models.Model],
    rows: Sequence[dict[str, Any]],
    *,
    keys: Sequence[str],
    returning: str,
) -> set[Any]:
    """Insert the rows whose ``keys`` are not stored yet; return their ``returning`` values.

    A row that a concurrent transaction inserts first is not returned (PostgreSQL waits for
    that transaction), so each value is reported by exactly one writer.
    """
    if not rows:
        return set()
    names = list(rows[0])
    table_key = ", ".join(c for c, _ in _columns(model, keys))
    ((ret_column, ret_field),) = _columns(model, [returning])
    ordered = sorted(rows, key=lambda row: tuple(str(row[k]) for k in keys))
    found: set[Any] = set()
    with connection.cursor() as cursor:
        for start in range(0, len(ordered), BATCH):
            sql, params = _insert_sql(model, names, ordered[start : start + BATCH])
            cursor.execute(
                f"{sql} ON CONFLICT ({table_key}) DO NOTHING RETURNING {ret_column}", params
            )
            found.update(ret_field.to_python(value) for (value,) in cursor.fetchall())
    return found
