"""Rows of the hot path without the ORM's query compiler.

A chat message costs a membership read and an insert; building those two
statements with the ORM (select_related joins, ordering, filters, the
insert compiler) took more CPU than running them, and the send path bounds
how many messages a daphne process takes per second. Here the statement
text is made once per model from the models' meta, and rows come back as
real model instances through `Model.from_db` with the same converters the
ORM applies (time zones, booleans on SQLite, JSON), so callers see no
difference. Only for statements that run on every message: everything
else uses the ORM."""

import functools
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

from django.db import connection
from django.db.models import Model

M = TypeVar("M", bound=Model)


@dataclass(frozen=True)
class Columns:
    """The concrete columns of a model under a table alias."""

    model: type[Model]
    alias: str
    attnames: tuple[str, ...]
    converters: tuple[tuple[Callable[..., Any], ...], ...]
    expressions: tuple[Any, ...]

    @property
    def sql(self) -> str:
        quote = connection.ops.quote_name
        return ", ".join(f"{quote(self.alias)}.{quote(field.column)}" for field in self.model._meta.concrete_fields)

    @property
    def width(self) -> int:
        return len(self.attnames)

    def instance(self, values: Sequence[Any]) -> Model | None:
        """The model instance of this slice of a row; None for the all-NULL
        slice of an outer join that found nothing."""
        if values[self.attnames.index(self.model._meta.pk.attname)] is None:  # type: ignore[union-attr]
            return None
        converted = []
        for value, converters, expression in zip(values, self.converters, self.expressions, strict=True):
            for converter in converters:
                value = converter(value, expression, connection)
            converted.append(value)
        return self.model.from_db(connection.alias, list(self.attnames), converted)


@functools.cache
def columns(model: type[Model], alias: str) -> Columns:
    fields = model._meta.concrete_fields
    expressions = tuple(field.get_col(alias) for field in fields)
    return Columns(
        model=model,
        alias=alias,
        attnames=tuple(field.attname for field in fields),
        converters=tuple(
            tuple(connection.ops.get_db_converters(expression) + expression.get_db_converters(connection))
            for expression in expressions
        ),
        expressions=expressions,
    )


def split(row: Sequence[Any], parts: Sequence[Columns]) -> list[Model | None]:
    """The instances of one row selected as `parts` one after another."""
    instances = []
    start = 0
    for part in parts:
        instances.append(part.instance(row[start : start + part.width]))
        start += part.width
    return instances


@functools.cache
def _insert_sql(model: type[Model]) -> tuple[str, tuple[Any, ...]]:
    meta = model._meta
    fields = tuple(
        field for field in meta.local_concrete_fields if field is not meta.pk and not getattr(field, "generated", False)
    )
    quote = connection.ops.quote_name
    sql = (
        f"INSERT INTO {quote(meta.db_table)} ({', '.join(quote(field.column) for field in fields)})"  # noqa: S608 - names from the model's meta
        f" VALUES ({', '.join(['%s'] * len(fields))}) RETURNING {quote(meta.pk.column)}"  # type: ignore[union-attr]
    )
    return sql, fields


def insert(instance: M) -> M:
    """INSERT a new instance (auto primary key) in one statement, as
    `instance.save()` would: pre_save (auto_now_add…) and the fields' own
    preparation of values. Sends no model signals; for models that have none."""
    sql, fields = _insert_sql(type(instance))
    values = [field.get_db_prep_save(field.pre_save(instance, True), connection) for field in fields]
    with connection.cursor() as cursor:
        cursor.execute(sql, values)
        row = cursor.fetchone()
    instance.pk = row[0]
    instance._state.adding = False
    instance._state.db = connection.alias
    return instance
