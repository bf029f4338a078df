"""Template tags for the data-quality panels: a record's queries and warnings saved anyway,
and the open queries per site on the admin index."""

from __future__ import annotations

from django import template
from django.contrib.contenttypes.models import ContentType
from django.urls import reverse

from registry.dataqueries import RAISE_PERMISSION, open_query_counts
from registry.quality_models import DataQuery, WarningAcknowledgement

register = template.Library()


@register.inclusion_tag("admin/registry/record_quality.html", takes_context=True)
def record_quality(context, record):
    from registry.quality_admin import QUERYABLE_MODELS

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
            (query, reverse("admin:registry_dataquery_detail", args=[query.pk]))
            for query in queries
        ],
        "unresolved": sum(query.state != DataQuery.State.CLOSED for query in queries),
        "acknowledgements": acknowledgements,
        "raise_url": (
            reverse("admin:registry_dataquery_raise", args=[content_type.pk, record.pk])
            if user.has_perm(RAISE_PERMISSION)
            else None
        ),
    }


@register.simple_tag(takes_context=True)
def open_queries_by_site(context):
    user = context["request"].user
    if not user.has_perm("registry.view_dataquery"):
        return []
    return open_query_counts(user)
