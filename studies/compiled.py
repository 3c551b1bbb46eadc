"""Querysets of a fixed shape compiled to SQL once per process, then run with new values.

Turning a queryset into SQL costs Django more than PostgreSQL takes to run it when the query is
a one-row lookup with joins and subqueries: every patient page reads its patient (three joined
tables and a lock subquery) and compiling that costs about three times its execution. A
:class:`CompiledQuery` compiles such a query once per process and database, keeps its SQL and
the compiler's description of the selected columns, and on each call only substitutes the new
values into the parameters, executes, and builds the model instances (with their
``select_related`` objects and annotations) as Django's own ``ModelIterable`` does.

Only the *values* may change between calls, never the shape: ``build`` receives integers (the
values: primary keys) and must return a queryset whose SQL text does not depend on them. This is
checked when the query is compiled: ``build`` is called with two different sets of sentinel
integers, and the two SQL texts must be identical and differ only where the sentinels are.

Django's iteration internals used here (``get_related_populators``, ``_get_from_db``, the
compiler's ``select``/``klass_info``/``annotation_col_map``) are those of the pinned Django
version; ``tests/studies/test_compiled.py`` compares the results with the ORM's own.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from django.db import connections
from django.db.models import QuerySet
from django.db.models.query import _get_from_db, get_related_populators
from django.db.transaction import TransactionManagementError

# Two sets of values no real key takes, far apart so that no constant of a query equals one.
_SENTINELS = (-1_999_000_000, -1_888_000_000)


class ShapeError(ValueError):
    """``build`` made SQL that depends on its values: it cannot be compiled once."""


@dataclass(frozen=True)
class _Compiled:
    sql: str
    params: tuple
    slots: tuple[tuple[int, int], ...]  # (position in params, index of the value)
    col_count: int
    init_list: tuple[str, ...]
    model_start: int
    model_end: int
    from_db: Callable
    populators: list
    annotation_col_map: dict[str, int]
    converters: dict
    for_update: bool  # SELECT ... FOR UPDATE: only inside a transaction


class CompiledQuery:
    """``CompiledQuery(lambda pk: Model.objects.filter(pk=pk)...)``; ``query.all(pk)`` returns
    the list of instances, ``query.first(pk)`` the first or None.

    Compiled lazily, once per database alias (thread-safe); the queryset must yield model
    instances (not ``values()``) and use no ``prefetch_related`` (rows only)."""

    def __init__(self, build: Callable[..., QuerySet], *, arity: int = 1) -> None:
        self._build = build
        self._arity = arity
        self._compiled: dict[str, _Compiled] = {}
        self._lock = threading.Lock()

    def _sentinels(self, which: int) -> tuple[int, ...]:
        return tuple(_SENTINELS[which] - i for i in range(self._arity))

    def _compile(self, alias: str) -> _Compiled:
        first, second = (self._build(*self._sentinels(i)) for i in (0, 1))
        if first._prefetch_related_lookups:
            raise ShapeError("prefetch_related needs more queries than one: not compiled")
        compiler = first.query.get_compiler(using=alias)
        sql, params = compiler.as_sql()
        other_sql, other_params = second.query.get_compiler(using=alias).as_sql()
        slots = []
        for position, (a, b) in enumerate(zip(params, other_params, strict=True)):
            if a == b:
                continue
            index = self._sentinels(0).index(a) if a in self._sentinels(0) else None
            if index is None or b != self._sentinels(1)[index]:
                raise ShapeError(f"parameter {position} depends on the values: {a!r} / {b!r}")
            slots.append((position, index))
        if sql != other_sql:
            raise ShapeError("the SQL text depends on the values")
        if len({index for _position, index in slots}) != self._arity:
            raise ShapeError("a value is not used by the query")
        select, klass_info = compiler.select, compiler.klass_info
        model_cls = klass_info["model"]
        fields = klass_info["select_fields"]
        start, end = fields[0], fields[-1] + 1
        fetch_mode = first._fetch_mode
        return _Compiled(
            sql=sql,
            params=tuple(params),
            slots=tuple(slots),
            col_count=compiler.col_count,
            init_list=tuple(f[0].target.attname for f in select[start:end]),
            model_start=start,
            model_end=end,
            from_db=_get_from_db(model_cls, fetch_mode),
            populators=get_related_populators(klass_info, select, alias, fetch_mode),
            annotation_col_map=dict(compiler.annotation_col_map or {}),
            converters=compiler.get_converters([s[0] for s in select[: compiler.col_count]]),
            for_update=bool(first.query.select_for_update),
        )

    def compiled(self, alias: str = "default") -> _Compiled:
        compiled = self._compiled.get(alias)
        if compiled is None:
            with self._lock:
                compiled = self._compiled.get(alias) or self._compile(alias)
                self._compiled[alias] = compiled
        return compiled

    def all(self, *values: int, using: str = "default") -> list[Any]:
        if len(values) != self._arity:
            raise TypeError(f"{self._arity} value(s) expected, {len(values)} given")
        c = self.compiled(using)
        params = list(c.params)
        for position, index in c.slots:
            params[position] = values[index]
        connection = connections[using]
        if c.for_update and connection.get_autocommit():  # as Django's compiler refuses it
            raise TransactionManagementError(
                "select_for_update cannot be used outside of a transaction."
            )
        with connection.cursor() as cursor:
            cursor.execute(c.sql, params)
            rows = cursor.fetchall()
        objects = []
        for raw in rows:
            row = list(raw[: c.col_count])
            for position, (convs, expression) in c.converters.items():
                value = row[position]
                for converter in convs:
                    value = converter(value, expression, connection)
                row[position] = value
            obj = c.from_db(using, c.init_list, row[c.model_start : c.model_end])
            for populator in c.populators:
                populator.populate(row, obj)
            for name, position in c.annotation_col_map.items():
                setattr(obj, name, row[position])
            objects.append(obj)
        return objects

    def first(self, *values: int, using: str = "default") -> Any | None:
        objects = self.all(*values, using=using)
        return objects[0] if objects else None
