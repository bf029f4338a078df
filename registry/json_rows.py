"""A parent's related rows read in the parent's own query, as a PostgreSQL array of JSON
objects, and turned back into model instances: for pages that show a few children of each
of a few parents (the patient record) and must keep to a fixed number of queries, where
``prefetch_related`` costs one query per relation.

``json_rows(queryset)`` is the expression to annotate (``queryset`` filtered by
``OuterRef``, ordered as the page wants); ``json_instances(model, value)`` gives the
instances back, with the same Python values the ORM would give (numbers read as
``Decimal``, dates and times parsed by each field). Fields left out (``exclude``) are
deferred: reading one costs a query, as ``defer()`` does.
"""

from __future__ import annotations

import decimal
import json
from collections.abc import Iterable

from django.contrib.postgres.expressions import ArraySubquery
from django.db import DEFAULT_DB_ALIAS
from django.db.models import F, Model, QuerySet, TextField
from django.db.models.functions import Cast, JSONObject


def _fields(model: type[Model], exclude: Iterable[str] = ()) -> list:
    return [f for f in model._meta.concrete_fields if f.name not in set(exclude)]


def json_rows(
    queryset: QuerySet,
    *,
    exclude: Iterable[str] = (),
    related: dict[str, Iterable[str]] | None = None,
) -> ArraySubquery:
    """``queryset``'s rows as an array of JSON texts, one object per row keyed by each
    field's attribute name; ``related`` names foreign keys whose object to read along (with
    the fields listed) as ``{"fk": {...}}``."""
    model = queryset.model
    values = {f.attname: F(f.attname) for f in _fields(model, exclude)}
    for name, fields in (related or {}).items():
        values[f"{name}__"] = JSONObject(**{field: F(f"{name}__{field}") for field in fields})
    return ArraySubquery(queryset.values(row=Cast(JSONObject(**values), TextField())))


def json_instances(
    model: type[Model],
    rows: list[str] | None,
    *,
    exclude: Iterable[str] = (),
    related: dict[str, type[Model]] | None = None,
) -> list:
    """The instances of ``model`` from ``json_rows``'s array; ``related`` gives the model of
    each foreign key read along, whose object is set on the instance (None for none)."""
    fields = _fields(model, exclude)
    instances = []
    for text in rows or []:
        row = json.loads(text, parse_float=decimal.Decimal)
        instance = model.from_db(
            DEFAULT_DB_ALIAS,
            [f.attname for f in fields],
            [None if row[f.attname] is None else f.to_python(row[f.attname]) for f in fields],
        )
        for name, related_model in (related or {}).items():
            values = row[f"{name}__"]
            pk_name = related_model._meta.pk.attname
            other = None
            if values.get(pk_name) is not None:
                other = related_model.from_db(DEFAULT_DB_ALIAS, list(values), list(values.values()))
            instance._state.fields_cache[name] = other
        instances.append(instance)
    return instances
