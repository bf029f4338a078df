"""Admin pages for queries to sites and for warnings saved anyway.

A query is raised from the record's own page (the "Queries to site" panel links here with the
record), answered and closed on the query's page; each step calls one service of
``outcomes.quality.queries`` and is audited by pghistory (the query's *History* page).
"""

from __future__ import annotations

from django import forms
from django.contrib import admin, messages
from django.contrib.contenttypes.models import ContentType
from django.core.exceptions import PermissionDenied, ValidationError
from django.http import Http404
from django.shortcuts import redirect
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils.html import format_html
from django.utils.translation import gettext_lazy as _

from outcomes.quality.models import DataQuery, WarningAcknowledgement
from outcomes.quality.queries import (
    ANSWER_PERMISSION,
    RAISE_PERMISSION,
    dataquery_answer,
    dataquery_close,
    dataquery_raise,
    dataquery_reopen,
    queryable_fields,
)
from registry.admin import HistoryMixin, ReadOnlyAdminMixin, ScopedObjectsMixin
from registry.admin_lists import site_filter

# Records a query can be about (app_label.model); each has a site through its links.
QUERYABLE_MODELS = {
    "registry.patient",
    "registry.procedure",
    "registry.treatedlevel",
    "registry.complication",
    "outcomes.questionnaireresponse",
}


def admin_url_of(record) -> str:
    meta = record._meta
    return reverse(f"admin:{meta.app_label}_{meta.model_name}_change", args=[record.pk])


def record_for_user(request, content_type_id, object_id):
    """The record a query is about, if ``request.user`` may see it (else 404)."""
    try:
        content_type = ContentType.objects.get_for_id(int(content_type_id))
        object_id = int(object_id)
    except (ContentType.DoesNotExist, TypeError, ValueError) as error:
        raise Http404(_("No such record at your sites.")) from error
    if f"{content_type.app_label}.{content_type.model}" not in QUERYABLE_MODELS:
        raise Http404(_("Queries are raised on clinical records only."))
    model = content_type.model_class()
    record = model._default_manager.for_user(request.user).filter(pk=object_id).first()
    if record is None:
        raise Http404(_("No such record at your sites."))
    return record


class RaiseForm(forms.Form):
    field_name = forms.ChoiceField(label=_("Field"))
    comment = forms.CharField(label=_("Question to the site"), widget=forms.Textarea)

    def __init__(self, *args, record, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["field_name"].choices = queryable_fields(type(record))


class StepForm(forms.Form):
    action = forms.ChoiceField(
        choices=[("answer", _("Answer")), ("close", _("Close")), ("reopen", _("Reopen"))]
    )
    text = forms.CharField(required=False, widget=forms.Textarea(attrs={"rows": 3}))


@admin.register(DataQuery)
# Raised from the record's page, every step through a service on the query's page.
class DataQueryAdmin(ReadOnlyAdminMixin, ScopedObjectsMixin, HistoryMixin, admin.ModelAdmin):
    list_display = [
        "record_link",
        "field_name",
        "state",
        "site",
        "raised_by",
        "raised_at",
        "answered_at",
        "closed_at",
    ]
    # The record column is our own link to the query's page; the admin's row link around it
    # would nest two links, leaving an empty one for a screen reader (axe ``link-name``).
    list_display_links = None
    list_filter = ["state", site_filter("site")]
    list_select_related = ["site", "raised_by"]
    search_fields = ["record_label", "comment", "answer"]

    @admin.display(description=_("record"), ordering="record_label")
    def record_link(self, obj):
        url = reverse("admin:outcomes_dataquery_detail", args=[obj.pk])
        return format_html('<a href="{}">{}</a>', url, obj.record_label)

    def get_urls(self):
        return [
            path(
                "raise/<str:content_type_id>/<str:object_id>/",
                self.admin_site.admin_view(self.raise_view),
                name="outcomes_dataquery_raise",
            ),
            path(
                "<int:query_id>/detail/",
                self.admin_site.admin_view(self.detail_view),
                name="outcomes_dataquery_detail",
            ),
            *super().get_urls(),
        ]

    def change_view(self, request, object_id, form_url="", extra_context=None):
        if not str(object_id).isdigit():
            raise Http404
        return redirect("admin:outcomes_dataquery_detail", int(object_id))

    def raise_view(self, request, content_type_id, object_id):
        if not request.user.has_perm(RAISE_PERMISSION):
            raise PermissionDenied
        record = record_for_user(request, content_type_id, object_id)
        form = RaiseForm(request.POST or None, record=record)
        if request.method == "POST" and form.is_valid():
            try:
                query = dataquery_raise(
                    user=request.user,
                    record=record,
                    field_name=form.cleaned_data["field_name"],
                    comment=form.cleaned_data["comment"],
                )
            except ValidationError as error:
                form.add_error(None, error)
            else:
                messages.success(request, _("Query raised: %(query)s") % {"query": query})
                return redirect(admin_url_of(record))
        context = {
            **self.admin_site.each_context(request),
            "title": _("Raise a query on %(record)s") % {"record": record},
            "opts": self.model._meta,
            "record": record,
            "record_url": admin_url_of(record),
            "form": form,
        }
        return TemplateResponse(request, "admin/outcomes/dataquery/raise.html", context)

    def detail_view(self, request, query_id):
        query = self.get_queryset(request).filter(pk=query_id).first()
        if query is None or not self.has_view_permission(request, query):
            raise Http404(_("No such query at your sites."))
        form = StepForm(request.POST or None)
        if request.method == "POST" and form.is_valid():
            action, text = form.cleaned_data["action"], form.cleaned_data["text"]
            try:
                if action == "answer":
                    dataquery_answer(query=query, user=request.user, answer=text)
                elif action == "close":
                    dataquery_close(query=query, user=request.user)
                else:
                    dataquery_reopen(query=query, user=request.user, comment=text)
            except ValidationError as error:
                for message in error.messages:
                    messages.error(request, message)
            else:
                messages.success(request, _("The query is now %(state)s.") % {
                    "state": DataQuery.objects.get(pk=query.pk).get_state_display().lower()
                })  # fmt: skip
            return redirect("admin:outcomes_dataquery_detail", query.pk)
        record = query.record
        user = request.user
        context = {
            **self.admin_site.each_context(request),
            "title": str(query),
            "opts": self.model._meta,
            "query": query,
            "record_url": admin_url_of(record) if record is not None else None,
            "can_answer": user.has_perm(ANSWER_PERMISSION) and query.state == "open",
            "can_close": user.has_perm(RAISE_PERMISSION) and query.state != "closed",
            "can_reopen": user.has_perm(RAISE_PERMISSION) and query.state != "open",
            "history_url": reverse("admin:outcomes_dataquery_history", args=[query.pk]),
        }
        return TemplateResponse(request, "admin/outcomes/dataquery/detail.html", context)


@admin.register(WarningAcknowledgement)
class WarningAcknowledgementAdmin(
    ReadOnlyAdminMixin, ScopedObjectsMixin, HistoryMixin, admin.ModelAdmin
):
    """Warnings staff saved anyway, with their reasons (read-only)."""

    list_display = ["created_at", "site", "content_type", "object_id", "codes", "reason", "user"]
    list_filter = [site_filter("site"), "content_type"]
    list_select_related = ["site", "user", "content_type"]
    readonly_fields = [
        "content_type",
        "object_id",
        "site",
        "codes",
        "messages",
        "reason",
        "user",
        "created_at",
    ]
    fields = readonly_fields
