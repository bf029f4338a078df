"""The cohort report page in the admin site (scoped to the user's sites), its downloads and
the list of patients behind each count."""

from __future__ import annotations

import datetime
import hashlib
import json

from django.conf import settings
from django.contrib import admin
from django.contrib.admin.views.decorators import staff_member_required
from django.core.cache import cache
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseBadRequest
from django.shortcuts import render
from django.urls import reverse
from django.utils import translation
from django.utils.formats import get_format
from django.utils.http import urlencode
from django.utils.safestring import mark_safe
from django.utils.translation import gettext_lazy as _

from outcomes.reports.annual import annual_report, annual_report_docx
from outcomes.reports.dataset import ReportFilter, ReportFilterForm
from outcomes.reports.formats import (
    benchmark_tables,
    chart_keys,
    chart_svg,
    decimals_localised,
    download_name,
    funnel_svgs,
    model_tables,
    report_csv,
    report_docx,
    report_localised,
    report_markdown,
    report_tidy_csv,
)
from outcomes.reports.sites import site_benchmark_report
from outcomes.reports.tables import cohort_report, cohort_report_traced
from registry.access import is_registry_manager
from registry.models import Patient, Site
from registry.project.db_router import reading_from_replica

DOWNLOADS = {
    # format parameter: (body, content type, file name suffix); a body takes the report and,
    # where it writes words of its own, their ``language``
    "csv": (lambda report, language: report_csv(report), "text/csv; charset=utf-8", "csv"),
    "tidy": (
        lambda report, language: report_tidy_csv(report),
        "text/csv; charset=utf-8",
        "tidy.csv",
    ),
    "md": (report_markdown, "text/markdown; charset=utf-8", "md"),
    "docx": (
        report_docx,
        "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
        "docx",
    ),
}


def sites_in_scope(user) -> tuple[str, ...]:
    """The codes of the user's sites for a file name; none (read "all-sites") when the user
    sees every site, a registry manager."""
    if is_registry_manager(user):
        return ()
    return tuple(Site.objects.for_user(user).order_by("code").values_list("code", flat=True))


def download(
    report: dict, fmt: str, *, slug: str | None = None, language: str = "en"
) -> HttpResponse:
    """``report`` (built in ``language``) as the file ``fmt``, its own words in ``language``
    too, whatever language the request is in."""
    render_body, content_type, suffix = DOWNLOADS[fmt]
    response = HttpResponse(render_body(report, language=language), content_type=content_type)
    filename = download_name(report, suffix, slug)
    response["Content-Disposition"] = f'attachment; filename="{filename}"'
    return response


def page_language() -> str:
    """The active language when the site offers it (the report's labels are translated into
    each), else English."""
    language = translation.get_language() or "en"
    return language if language in dict(settings.LANGUAGES) else "en"


def _query(request: HttpRequest) -> str:
    query = request.GET.copy()
    for key in ("format", "cell", "lang"):
        query.pop(key, None)
    return query.urlencode()


def _display(table: dict, query: str, separator: str = ".") -> dict:
    """A table with each count's link to the patients it counts, its numbers with the
    decimal mark of the page's language (``separator``)."""
    base = f"{reverse('cohort_report_patients')}?{query}{'&' if query else ''}"
    rows = []
    for r, row in enumerate(table["rows"]):
        cells = []
        for c, text in enumerate(row):
            key = table["links"].get(f"{r}.{c}")
            href = f"{base}{urlencode({'cell': key})}" if key else None
            # Row labels carry numbers too (a responder's threshold, "≥ 0,12").
            shown = decimals_localised(str(text), separator)
            cells.append({"text": shown, "href": href})
        rows.append(cells)
    return {**table, "display_rows": rows}


@staff_member_required
def cohort_report_page(request: HttpRequest) -> HttpResponse:
    form = ReportFilterForm(request.GET or None, user=request.user)
    report = None
    labels_language = page_language()
    if not request.GET or form.is_valid():
        filters = form.report_filter() if form.is_bound else ReportFilter()
        fmt = request.GET.get("format")
        if fmt in DOWNLOADS:
            # Downloads go into manuscripts: English (words and a decimal point) whatever the
            # page's language, unless ``lang`` asks for another.
            language = request.GET.get("lang") or "en"
            if language not in dict(settings.LANGUAGES):
                return HttpResponseBadRequest(
                    f"lang: give one of {', '.join(dict(settings.LANGUAGES))}, or leave it out.",
                    content_type="text/plain; charset=utf-8",
                )
            with reading_from_replica():
                report = cohort_report(user=request.user, filters=filters, language=language)
            report = report_localised(report, get_format("DECIMAL_SEPARATOR", lang=language))
            # The file says whose patients it holds: "AAR-ODE", not "all-sites", for a user
            # of two sites who chose none.
            slug = filters.slug(in_scope=sites_in_scope(request.user))
            return download(report, fmt, slug=slug, language=language)
        # The page follows its user's language: labels, notes, the filter and cell texts.
        with reading_from_replica():
            report = cohort_report(user=request.user, filters=filters, language=labels_language)
    query = _query(request)
    context = {
        **admin.site.each_context(request),
        "title": _("Cohort report: pathologic vs osteoporotic"),
        "form": form,
        "report_language": labels_language,
        "report": report,
        "tables": [_display(t, query, get_format("DECIMAL_SEPARATOR")) for t in report["tables"]]
        if report
        else [],
        # Drawn by their own requests (matplotlib takes about a second a chart, the whole
        # page without them a fifth of that), so the tables show at once.
        "charts": [
            (f"{key}-chart", caption, f"{reverse('cohort_report_chart', args=[key])}?{query}")
            for key, caption in (chart_keys(report) if report else [])
        ],
        "query": query,
        "downloads": [
            ("csv", _("CSV (formatted)")),
            ("tidy", _("CSV (tidy, numbers)")),
            ("md", _("Markdown")),
            ("docx", _("Word")),
        ],
    }
    return render(request, "admin/outcomes/cohort_report.html", context)


CHART_CACHE_SECONDS = 24 * 3600


@staff_member_required
def cohort_report_chart(request: HttpRequest, key: str) -> HttpResponse:
    """One chart of the cohort report as SVG, for the same filters as the page. A drawing is
    kept by the hash of the numbers it shows: the same numbers (a reload, another user of the
    same sites) are not drawn again, and new data draws anew."""
    form = ReportFilterForm(request.GET, user=request.user)
    if not form.is_valid():
        raise Http404("Not a report filter.")
    with reading_from_replica():
        report = cohort_report(user=request.user, filters=form.report_filter())
    if key == "survival":
        shown = report["charts"]["survival"]
    elif key in report["charts"]["trajectories"]:
        shown = report["charts"]["trajectories"][key]
    else:
        raise Http404("No such chart in the report.")
    digest = hashlib.sha256(json.dumps([key, shown], sort_keys=True).encode()).hexdigest()
    cache_key = f"cohort-chart:{digest}"
    svg = cache.get(cache_key)
    if svg is None:
        svg = chart_svg(report, key)
        cache.set(cache_key, svg, CHART_CACHE_SECONDS)
    response = HttpResponse(svg, content_type="image/svg+xml; charset=utf-8")
    response["Cache-Control"] = "private, max-age=300"
    return response


@staff_member_required
def cohort_report_patients(request: HttpRequest) -> HttpResponse:
    """The patients a count of the report counts, within the user's sites, so a reviewer can
    check the cell by hand."""
    form = ReportFilterForm(request.GET, user=request.user)
    if not form.is_valid():
        raise Http404("Not a report filter.")
    report = cohort_report_traced(
        user=request.user, filters=form.report_filter(), language=page_language()
    )
    found = report.masks.get(request.GET.get("cell", ""))
    if found is None:
        raise Http404("No such count in the report.")
    row, column, mask = found
    ids = [int(pk) for pk in report.patient_ids[mask]]
    patients = (
        Patient.objects.for_user(request.user)
        .filter(pk__in=ids)
        .select_related("site")
        .order_by("registry_id")
    )
    table = next(t for t in report.data["tables"] if t["links"] and request.GET["cell"]
                 in t["links"].values())  # fmt: skip
    context = {
        **admin.site.each_context(request),
        "title": _("Patients counted in the cohort report"),
        "table": table["title"],
        "row": decimals_localised(row.strip(), get_format("DECIMAL_SEPARATOR")),
        "column": column,
        "patients": patients,
        # The record page, where a reviewer sees the whole patient (the same permission
        # as the record page itself).
        "can_see_records": request.user.has_perm("registry.view_patient"),
        "count": len(ids),
        "filter_text": report.data["filter_text"],
        "back": f"{reverse('cohort_report')}?{_query(request)}",
    }
    return render(request, "admin/outcomes/cohort_report_patients.html", context)


@staff_member_required
def site_benchmark_page(request: HttpRequest) -> HttpResponse:
    """Case-mix adjusted site benchmarking: funnel plots and each site's observed against
    expected values; the user's own sites by name, the others as letters (managers: all)."""
    form = ReportFilterForm(request.GET or None, user=request.user)
    form.fields.pop("site")  # a benchmark compares every site
    report = None
    if not request.GET or form.is_valid():
        filters = form.report_filter() if form.is_bound else ReportFilter()
        with reading_from_replica():
            report = site_benchmark_report(
                user=request.user, filters=filters, language=page_language()
            )
    context = {
        **admin.site.each_context(request),
        "title": _("Site benchmarking: case-mix adjusted outcomes"),
        "form": form,
        "report": report,
        # Our own matplotlib output, with our own labels: safe to inline.
        "funnels": [
            (key, caption, mark_safe(svg))  # noqa: S308
            for key, caption, svg in (funnel_svgs(report) if report else [])
        ],
        "tables": benchmark_tables(report) if report else [],
        "models": model_tables(report) if report else [],
    }
    return render(request, "admin/outcomes/site_benchmark.html", context)


@staff_member_required
def annual_report_page(request: HttpRequest) -> HttpResponse:
    """The annual report as HTML (``?year=2026[&site=CODE][&format=docx]``). The whole
    registry's edition is for registry managers; anyone else gets their own site's editions."""
    today = datetime.date.today()
    try:
        year = int(request.GET.get("year") or today.year)
    except ValueError:
        year = None
    sites = Site.objects.all() if is_registry_manager(request.user) else (
        Site.objects.for_user(request.user))  # fmt: skip
    code = request.GET.get("site") or ""
    site = sites.filter(code=code).first() if code else None
    error = None
    if year is None or not 2000 <= year <= 2100:
        error = _("Give the year as four digits, e.g. 2026.")
    elif code and site is None:
        error = _("No such site among yours.")
    elif site is None and not is_registry_manager(request.user):
        error = _(
            "Choose one of your sites: the whole registry's edition is for registry managers."
        )
    report = None
    if error is None:
        with reading_from_replica():
            report = annual_report(year=year, site=site)
        if request.GET.get("format") == "docx":
            response = HttpResponse(
                annual_report_docx(report),
                content_type=DOWNLOADS["docx"][1],
            )
            name = f"annual-report-{year}{f'-{site.code}' if site else ''}.docx"
            response["Content-Disposition"] = f'attachment; filename="{name}"'
            return response
    funnels = {}
    if report:
        funnels = {key: mark_safe(svg) for key, _c, svg in funnel_svgs(report["benchmark"])}  # noqa: S308
    context = {
        **admin.site.each_context(request),
        "title": _("Annual registry report"),
        "report": report,
        "error": error,
        "year": year or today.year,
        "site_code": code,
        "sites": sites.order_by("code"),
        "funnels": list(funnels.items()),
        "query": request.GET.urlencode(),
    }
    status = 400 if error and request.GET else 200
    return render(request, "admin/outcomes/annual_report.html", context, status=status)
