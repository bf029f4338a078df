"""The site benchmarking report: every site's patients (the whole registry, whoever asks) in
the cohort report's analysis dataset, the case-mix models and comparisons of
``outcomes.reports.benchmarking``, and each site's label as the asking user may see it.

The models are always fitted on the whole registry, so a site's expected values do not depend
on who looks. A registry manager (and the command line, ``user=None``) sees every site by name;
anyone else sees the sites they belong to by name and the others as letters.
"""

from __future__ import annotations

from django.conf import settings
from django.utils import translation

from outcomes.reports import benchmarking
from outcomes.reports.dataset import Columns, ReportFilter, load_patients
from registry.access import is_registry_manager, site_ids
from registry.models import Site


def named_sites(user) -> set[int] | None:
    """The ids of the sites ``user`` sees by name; None: every site."""
    if user is None or is_registry_manager(user):
        return None
    return set(site_ids(user))


def site_benchmark_report(*, user, filters: ReportFilter, language: str = "en") -> dict:
    """Observed, expected, funnel limits and n per site and outcome (design.md §8a) for the
    index procedures in the filter's dates up to its cut-off, at every site (the filter's
    sites are not used: a benchmark compares every site), labelled for ``user``; its filter
    described in ``language`` (English for the API)."""
    filters = ReportFilter.of(date_from=filters.date_from, date_to=filters.date_to,
                              as_of=filters.as_of)  # fmt: skip
    patients = load_patients(user=None, filters=filters)
    return benchmark_from_patients(patients, filters, named=named_sites(user), language=language)


def registry_site_labels(patients: Columns, *, named: set[int] | None):
    """The labels of the sites in ``patients`` (see ``benchmarking.site_labels``)."""
    counts: dict[int, int] = {}
    for site in patients["site"]:
        counts[int(site)] = counts.get(int(site), 0) + 1
    sites = [
        (pk, f"{code} – {name}", counts.get(pk, 0))
        for pk, code, name in Site.objects.filter(pk__in=counts).values_list("pk", "code", "name")
    ]
    return benchmarking.site_labels(sites, named=named)


def benchmark_from_patients(
    patients: Columns, filters: ReportFilter, *, named: set[int] | None, language: str = "en"
) -> dict:
    """The benchmark report of ``patients`` (every site's, loaded with ``user=None``), with
    the sites in ``named`` (every site for None) by name and the others as letters; its
    filter described in ``language``."""
    results = benchmarking.benchmark(
        patients, min_n=settings.REPORT_MIN_N, mcid_vas=str(settings.REPORT_MCID_VAS)
    )
    labels = registry_site_labels(patients, named=named)
    with translation.override(language):
        filter_text = filters.describe(every_site=True)
    return {
        "filters": filters.as_dict(),
        "filter_text": filter_text,
        "filter_slug": filters.slug(),
        "min_n": settings.REPORT_MIN_N,
        "mcid_vas": str(settings.REPORT_MCID_VAS),
        "patients": int(len(patients["patient_id"])),
        "sites": len(labels),
        "outcomes": benchmarking.as_dict(results, labels),
    }
