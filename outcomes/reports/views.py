"""The cohort report page in the admin site (scoped to the user's sites) and its downloads."""

from __future__ import annotations

from django import forms
from django.contrib import admin
from django.contrib.admin.views.decorators import staff_member_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.utils.safestring import mark_safe
from django.utils.translation import gettext_lazy as _

from outcomes.reports.dataset import ReportFilter
from outcomes.reports.formats import (
    pain_chart_svg,
    report_csv,
    report_markdown,
    survival_chart_svg,
)
from outcomes.reports.tables import cohort_report
from registry.models import Site
from registry.project.db_router import reading_from_replica


class ReportFilterForm(forms.Form):
    """Which index procedures the report covers; sites limited to the user's own."""

    site = forms.MultipleChoiceField(label=_("sites"), required=False)
    date_from = forms.DateField(label=_("index procedure from"), required=False)
    date_to = forms.DateField(label=_("index procedure to"), required=False)
    as_of = forms.DateField(label=_("as of"), required=False)

    def __init__(self, *args, user, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["site"].choices = [
            (site.code, f"{site.code} – {site.name}")
            for site in Site.objects.for_user(user).order_by("code")
        ]

    def clean(self):
        cleaned = super().clean()
        start, end = cleaned.get("date_from"), cleaned.get("date_to")
        if start and end and start > end:
            self.add_error("date_to", _("The end date is before the start date."))
        return cleaned

    def report_filter(self) -> ReportFilter:
        data = self.cleaned_data
        return ReportFilter.of(
            sites=data.get("site"),
            date_from=data.get("date_from"),
            date_to=data.get("date_to"),
            as_of=data.get("as_of"),
        )


def download(report: dict, fmt: str) -> HttpResponse:
    body, content_type, suffix = (
        (report_csv(report), "text/csv; charset=utf-8", "csv")
        if fmt == "csv"
        else (report_markdown(report), "text/markdown; charset=utf-8", "md")
    )
    response = HttpResponse(body, content_type=content_type)
    filename = f"cohort-report-{report['filters']['as_of']}.{suffix}"
    response["Content-Disposition"] = f'attachment; filename="{filename}"'
    return response


@staff_member_required
def cohort_report_page(request: HttpRequest) -> HttpResponse:
    form = ReportFilterForm(request.GET or None, user=request.user)
    report = None
    if not request.GET or form.is_valid():
        filters = form.report_filter() if form.is_bound else ReportFilter()
        with reading_from_replica():
            report = cohort_report(user=request.user, filters=filters)
        fmt = request.GET.get("format")
        if fmt in ("csv", "md"):
            return download(report, fmt)
    query = request.GET.copy()
    query.pop("format", None)
    context = {
        **admin.site.each_context(request),
        "title": _("Cohort report: pathologic vs osteoporotic"),
        "form": form,
        "report": report,
        # Our own matplotlib output, with our own labels: safe to inline.
        "pain_svg": mark_safe(pain_chart_svg(report)) if report else "",  # noqa: S308
        "survival_svg": mark_safe(survival_chart_svg(report)) if report else "",  # noqa: S308
        "query": query.urlencode(),
    }
    return render(request, "admin/outcomes/cohort_report.html", context)
