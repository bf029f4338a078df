"""Template tags for the data-quality panels: a record's queries and warnings saved anyway,
and the open queries per site on the admin index (``{% load quality %}``: the settings name
this module as the template library ``quality``)."""

from __future__ import annotations

from django import template
from django.contrib.contenttypes.models import ContentType
from django.urls import reverse

from outcomes.quality.admin import QUERYABLE_MODELS
from outcomes.quality.models import DataQuery, WarningAcknowledgement
from outcomes.quality.queries import RAISE_PERMISSION, open_query_counts

register = template.Library()


@register.inclusion_tag("admin/outcomes/record_quality.html", takes_context=True)
def record_quality(context, record):
    if record is None or record.pk is None:
        return {"show": False}
    meta = record._meta
    if f"{meta.app_label}.{meta.model_name}" not in QUERYABLE_MODELS:
        return {"show": False}
    user = context["request"].user
    content_type = ContentType.objects.get_for_model(record)
    queries = DataQuery.objects.filter(content_type=content_type, object_id=record.pk).order_by(
        "-raised_at"
    )
    acknowledgements = WarningAcknowledgement.objects.filter(
        content_type=content_type, object_id=record.pk
    ).select_related("user")
    return {
        "show": True,
        "queries": [
            (query, reverse("admin:outcomes_dataquery_detail", args=[query.pk]))
            for query in queries
        ],
        "unresolved": sum(query.state != DataQuery.State.CLOSED for query in queries),
        "acknowledgements": acknowledgements,
        "raise_url": (
            reverse("admin:outcomes_dataquery_raise", args=[content_type.pk, record.pk])
            if user.has_perm(RAISE_PERMISSION)
            else None
        ),
    }


@register.simple_tag(takes_context=True)
def open_queries_by_site(context):
    user = context["request"].user
    if not user.has_perm("outcomes.view_dataquery"):
        return []
    return open_query_counts(user)
