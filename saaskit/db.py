"""Statements the ORM cannot say in one round trip, for the hot paths of the saga's consumers.

Written by hand because Django has no single-statement form for them: a claim by a unique key is either
``create()`` inside a savepoint (SAVEPOINT, INSERT, RELEASE: three round trips, and an IntegrityError to catch) or
``bulk_create(ignore_conflicts=True)``, which cannot say whether it inserted; and ``update()`` returns a row count,
never the rows it changed.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

from django.db import connection
from django.db.models import AutoField, BigAutoField, Model, SmallAutoField


def _qn(name: str) -> str:
    return connection.ops.quote_name(name)


def insert_or_nothing(obj: Model, *, conflict: Sequence[str]) -> bool:
    """``INSERT ... ON CONFLICT (conflict) DO NOTHING RETURNING pk`` for one new model instance, in the caller's
    transaction: True (and ``obj.pk`` set, ``obj`` saved) when inserted; False when a row with the same
    ``conflict`` fields (a unique constraint's) already exists. A concurrent insert of the same key that is not
    committed yet is waited for, like the unique index makes a plain INSERT wait: False if it commits, True if it
    rolls back. Field defaults and ``auto_now(_add)`` apply as in ``save()``; no signals are sent."""
    meta = obj._meta
    fields = [f for f in meta.concrete_fields
              if not (f.primary_key and isinstance(f, AutoField | BigAutoField | SmallAutoField))]
    values = [f.get_db_prep_save(f.pre_save(obj, True), connection) for f in fields]
    columns = ", ".join(_qn(f.column) for f in fields)
    keys = ", ".join(_qn(meta.get_field(name).column) for name in conflict)
    sql = (f"INSERT INTO {_qn(meta.db_table)} ({columns}) VALUES ({', '.join(['%s'] * len(fields))}) "
           f"ON CONFLICT ({keys}) DO NOTHING RETURNING {_qn(meta.pk.column)}")
    with connection.cursor() as cursor:
        cursor.execute(sql, values)
        row = cursor.fetchone()
    if row is None:
        return False
    obj.pk = row[0]
    obj._state.adding = False
    obj._state.db = connection.alias
    return True


def update_returning(model: type[Model], *, where: Mapping[str, Any], values: Mapping[str, Any],
                     returning: Sequence[str]) -> list[tuple[Any, ...]]:
    """``UPDATE table SET values WHERE where (all equal) RETURNING returning`` in one round trip: the changed rows'
    ``returning`` fields (JSON fields decoded), ``[]`` when nothing matched. ``where`` and ``values`` name model
    fields (``instance`` for a foreign key takes the object or its id)."""
    meta = model._meta

    def column_and_value(name: str, value: Any) -> tuple[str, Any]:
        field = meta.get_field(name)
        if isinstance(value, Model):
            value = value.pk
        return _qn(field.column), field.get_db_prep_save(value, connection)

    sets = [column_and_value(name, value) for name, value in values.items()]
    conditions = [column_and_value(name, value) for name, value in where.items()]
    fields = [meta.get_field(name) for name in returning]
    sql = (f"UPDATE {_qn(meta.db_table)} SET {', '.join(f'{c} = %s' for c, _ in sets)} "
           f"WHERE {' AND '.join(f'{c} = %s' for c, _ in conditions)} "
           f"RETURNING {', '.join(_qn(f.column) for f in fields)}")
    with connection.cursor() as cursor:
        cursor.execute(sql, [v for _, v in sets] + [v for _, v in conditions])
        rows = cursor.fetchall()
    return [tuple(_decoded(field, value) for field, value in zip(fields, row, strict=True)) for row in rows]


def _decoded(field: Any, value: Any) -> Any:
    if field.get_internal_type() == "JSONField" and isinstance(value, str | bytes):
        return json.loads(value)  # Django's psycopg setup leaves jsonb as text for the field to decode
    return value
