"""Statements the ORM cannot say in one round trip, for the hot paths of the saga's consumers.

Written by hand because Django has no single-statement form for them: a claim by a unique key is either
``create()`` inside a savepoint (SAVEPOINT, INSERT, RELEASE: three round trips, and an IntegrityError to catch) or
``bulk_create(ignore_conflicts=True)``, which cannot say whether it inserted; and a parent with its children is a
round trip per table. The saga's transitions and money movements with conditions are PL/pgSQL functions in their
apps' migrations (``payments_charge``, ``inventory_reservation_claim``/``_move``, ``orders_transition``).
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from typing import Any

from django.db import DEFAULT_DB_ALIAS, connections
from django.db.models import AutoField, BigAutoField, Model, SmallAutoField


def _db() -> Any:
    """The default connection itself: ``django.db.connection`` is a proxy that looks it up on every attribute
    access (an asgiref Local each time), which the hot paths below would pay dozens of times per statement."""
    return connections[DEFAULT_DB_ALIAS]


@functools.cache
def _qn(name: str) -> str:
    return _db().ops.quote_name(name)


def insert_or_nothing(obj: Model, *, conflict: Sequence[str]) -> bool:
    """``INSERT ... ON CONFLICT (conflict) DO NOTHING RETURNING pk`` for one new model instance, in the caller's
    transaction: True (and ``obj.pk`` set, ``obj`` saved) when inserted; False when a row with the same
    ``conflict`` fields (a unique constraint's) already exists. A concurrent insert of the same key that is not
    committed yet is waited for, like the unique index makes a plain INSERT wait: False if it commits, True if it
    rolls back. Field defaults and ``auto_now(_add)`` apply as in ``save()``; no signals are sent."""
    connection = _db()
    meta = obj._meta
    fields = _insertable(type(obj))
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


@functools.cache
def _insertable(model: type[Model], exclude: Any = None) -> tuple[Any, ...]:
    return tuple(f for f in model._meta.concrete_fields if f is not exclude
                 and not (f.primary_key and isinstance(f, AutoField | BigAutoField | SmallAutoField)))


@functools.cache
def _cast(field: Any) -> str:
    """The field's type for a cast, without a length: an explicit cast to ``varchar(n)`` would silently cut a
    longer value, where assigning text to the column refuses it as the ORM's INSERT would."""
    db_type = field.cast_db_type(_db())
    return "text" if db_type.startswith(("varchar", "char")) else db_type


def _placeholders(fields: Sequence[Any]) -> str:
    """``%s::type`` per field: typed, so a NULL or a literal in a SELECT list or VALUES row gets its column's type."""
    return ", ".join(f"%s::{_cast(f)}" for f in fields)


def insert_with_children(parent: Model, children: Sequence[Model], *, link: str) -> None:
    """Insert a new ``parent`` and its new ``children`` (whose foreign key ``link`` points to it) in ONE statement
    (``insert_tree`` with one group). Sets the pks and links; defaults and ``auto_now(_add)`` apply as in
    ``save()``; no signals."""
    assert children, "a parent without children is a plain save()"
    insert_tree(parent, [(children, link)])


@functools.lru_cache(maxsize=256)
def _insert_tree_sql(parent_model: type[Model], shapes: tuple[tuple[type[Model], str, int], ...],
                     read: str | None) -> tuple[str, tuple[Any, ...]]:
    """``insert_tree``'s statement for a shape (the models, links and row counts), built once, and the link fields."""
    parent_fields = _insertable(parent_model)
    pk = _qn(parent_model._meta.pk.column)
    ctes = [f"parent AS (INSERT INTO {_qn(parent_model._meta.db_table)} "
            f"({', '.join(_qn(f.column) for f in parent_fields)}) VALUES ({_placeholders(parent_fields)}) "
            f"RETURNING {pk})"]
    links = []
    for n, (model, link, count) in enumerate(shapes):
        link_field = model._meta.get_field(link)
        fields = _insertable(model, exclude=link_field)
        names = ", ".join(f"c{i}" for i in range(len(fields)))
        ctes.append(f"g{n} AS (INSERT INTO {_qn(model._meta.db_table)} ({_qn(link_field.column)}, "
                    f"{', '.join(_qn(f.column) for f in fields)}) "
                    f"SELECT parent.{pk}, {', '.join(f'v.c{i}' for i in range(len(fields)))} FROM parent, "
                    f"(VALUES {', '.join(f'({_placeholders(fields)})' for _ in range(count))}) AS v ({names}) "
                    f"RETURNING {_qn(model._meta.pk.column)})")
        links.append(link_field)
    # Child pks come from their sequence in the order the rows are inserted (the VALUES' order).
    selected = [f"parent.{pk}"] + [f"ARRAY(SELECT {_qn(model._meta.pk.column)} FROM g{n} ORDER BY 1)"
                                    for n, (model, _, _) in enumerate(shapes)]
    if read is not None:
        selected.append(f"({read})")
    return f"WITH {', '.join(ctes)} SELECT {', '.join(selected)} FROM parent", tuple(links)


def insert_tree(parent: Model, groups: Sequence[tuple[Sequence[Model], str]], *,
                read: tuple[str, Sequence[Any]] | None = None) -> Any:
    """Insert a new ``parent`` and, per group ``(rows, link)``, new rows (of any model) whose field ``link`` (a
    foreign key to it, or a plain integer column holding its id) is set to the parent's pk, in ONE statement::

        WITH parent AS (INSERT ... RETURNING pk),
             g0 AS (INSERT INTO rows0 (link, ...) SELECT parent.pk, v.* FROM parent, (VALUES ...) v RETURNING pk),
             ...
        SELECT parent.pk, ARRAY(SELECT pk FROM g0 ORDER BY pk), ..., (read) FROM parent

    Sets every pk and link (a foreign key's cached object too); defaults and ``auto_now(_add)`` apply as in
    ``save()``; no signals. ``read`` is an optional SQL expression with its params, evaluated in the same
    statement and returned: it sees the database as it was before the statement (none of these rows), e.g. the
    customer's previous orders. Returns its value (None without ``read``). All or nothing, like any statement."""
    connection = _db()
    shapes = tuple((type(rows[0]), link, len(rows)) for rows, link in groups)
    assert all(rows for rows, _ in groups), "an empty group"
    sql, links = _insert_tree_sql(type(parent), shapes, read[0] if read is not None else None)
    params = [f.get_db_prep_save(f.pre_save(parent, True), connection) for f in _insertable(type(parent))]
    for (rows, _), link_field in zip(groups, links, strict=True):
        fields = _insertable(type(rows[0]), exclude=link_field)
        params.extend(f.get_db_prep_save(f.pre_save(row, True), connection) for row in rows for f in fields)
    if read is not None:
        params.extend(read[1])
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        row = cursor.fetchone()
    parent.pk = row[0]
    parent._state.adding = False
    parent._state.db = connection.alias
    for (rows, _), link_field, pks in zip(groups, links, row[1:1 + len(groups)], strict=True):
        if len(pks) != len(rows):  # pragma: no cover - an INSERT ... SELECT inserts every row or fails
            raise RuntimeError(f"insert_tree: {len(pks)} of {len(rows)} rows came back")
        for obj, obj_pk in zip(rows, pks, strict=True):
            obj.pk = obj_pk
            if link_field.is_relation:
                setattr(obj, link_field.name, parent)  # the id and the cached object, as a save() with it leaves
            else:
                setattr(obj, link_field.attname, parent.pk)
            obj._state.adding = False
            obj._state.db = connection.alias
    return row[-1] if read is not None else None
