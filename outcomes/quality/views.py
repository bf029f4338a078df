"""The per-site data-quality page: rule × count with the records behind each count, a button
to run the rules now, and the findings as CSV. Scoped to the user's sites."""

from __future__ import annotations

from django.contrib import admin, messages
from django.contrib.admin.views.decorators import staff_member_required
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import NoReverseMatch, reverse
from django.utils import timezone
from django.utils.translation import get_language
from django.utils.translation import gettext_lazy as _

from outcomes.quality.services import (
    findings_csv,
    findings_shown,
    latest_runs,
    quality_run,
    run_summary,
)
from registry.models import Site


def record_url(finding) -> str | None:
    app_label, model_name = finding.model.split(".")
    try:
        return reverse(f"admin:{app_label}_{model_name}_change", args=[finding.object_id])
    except NoReverseMatch:
        return None


@staff_member_required
def data_quality_page(request: HttpRequest) -> HttpResponse:
    if not request.user.has_perm("registry.view_patient"):
        raise PermissionDenied
    # The user's sites once: the filter's choices, the sites to run or show, the unchecked.
    choices = list(Site.objects.for_user(request.user))
    code = request.GET.get("site") or request.POST.get("site")
    sites = [site for site in choices if site.code == code] if code else choices
    if request.method == "POST":
        quality_run(sites=sites, user=request.user)
        messages.success(request, _("The data-quality rules were run just now."))
        return redirect(reverse("data_quality") + (f"?site={code}" if code else ""))
    runs = latest_runs(sites)
    if request.GET.get("format") == "csv":
        response = HttpResponse(findings_csv(runs), content_type="text/csv; charset=utf-8")
        stamp = timezone.now().strftime("%Y%m%d")
        response["Content-Disposition"] = f'attachment; filename="data-quality-{stamp}.csv"'
        return response
    shown = findings_shown(runs)
    language = get_language()
    sections = []
    for run in runs:
        rows = []
        for item in run_summary(run, shown[run.pk]):
            rows.append(
                {
                    "rule": item.rule,
                    "message": item.rule.message(language),
                    "count": item.count,
                    "records": [(f, record_url(f)) for f in item.findings],
                    "more": item.count - len(item.findings),
                }
            )
        sections.append({"run": run, "rows": rows})
    context = {
        **admin.site.each_context(request),
        "title": _("Data quality per site"),
        "sections": sections,
        "site_choices": choices,
        "selected": code or "",
        "unchecked": [s for s in sites if s.pk not in {run.site_id for run in runs}],
    }
    return render(request, "admin/outcomes/data_quality.html", context)
