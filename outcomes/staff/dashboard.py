"""The record status dashboard: patients × timepoints of their index procedure, like REDCap's.

Five queries per page whatever the cohort size: the count, one page of patients, their
follow-ups, their open queries to the site, and the column totals (one aggregate). The index
procedure and its cohort are ``Patient.index_procedure`` and ``Patient.index_cohort``, stored
from the one rule of each (``registry.derived``), so the dashboard, the report and the exports
agree.
"""

from __future__ import annotations

from dataclasses import dataclass

from django import forms
from django.contrib import admin
from django.core.exceptions import PermissionDenied
from django.core.paginator import Paginator
from django.db.models import Case, CharField, Count, Exists, F, OuterRef, Value, When
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.utils.translation import gettext_lazy as _

from outcomes.models import FollowUp, Timepoint, on_worklist_q
from outcomes.quality.queries import open_queries_by_patient
from registry.models import Cohort, Patient, RecordLock, Site

PAGE_SIZE = 50
WORKLIST = "worklist"


@dataclass(frozen=True)
class CellState:
    value: str
    label: str
    symbol: str  # shown in the cell with the colour, so the state never rests on colour alone


# In the order of the chase; the symbols are plain characters every screen reader names.
STATES = [
    # The model's own labels: a state has one name on every page.
    CellState(FollowUp.State.SCHEDULED, FollowUp.State.SCHEDULED.label, "·"),
    CellState(FollowUp.State.OPEN, FollowUp.State.OPEN.label, "○"),
    CellState(FollowUp.State.INVITED, FollowUp.State.INVITED.label, "✉"),
    CellState(FollowUp.State.REMINDED, FollowUp.State.REMINDED.label, "✉✉"),
    CellState(WORKLIST, _("On phone worklist"), "☎"),
    CellState(FollowUp.State.COMPLETED, FollowUp.State.COMPLETED.label, "✓"),
    CellState(FollowUp.State.MISSED, FollowUp.State.MISSED.label, "✗"),
    CellState(FollowUp.State.CANCELLED, FollowUp.State.CANCELLED.label, "–"),
]
STATE_BY_VALUE = {state.value: state for state in STATES}

# A follow-up waiting on the phone worklist shows as such, whatever its email state.
CELL_STATE = Case(
    When(on_worklist_q(), then=Value(WORKLIST)),
    default=F("state"),
    output_field=CharField(),
)


class DashboardFilter(forms.Form):
    site = forms.ChoiceField(label=_("Site"), required=False)
    cohort = forms.ChoiceField(
        label=_("Cohort (index procedure)"),
        required=False,
        choices=[("", _("All cohorts")), *Cohort.choices],
    )
    state = forms.ChoiceField(
        label=_("Has a follow-up that is"),
        required=False,
        choices=[("", _("Any state")), *[(s.value, s.label) for s in STATES]],
    )
    locked = forms.ChoiceField(
        label=_("Lock"),
        required=False,
        choices=[("", _("Locked or not")), ("yes", _("Locked records")), ("no", _("Not locked"))],
    )

    def __init__(self, *args, sites, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["site"].choices = [("", _("All my sites"))] + [
            (site.code, f"{site.code} – {site.name}") for site in sites
        ]


# The patient's whole record is locked (registry.locking); a follow-up lock shows on the record.
RECORD_LOCKED = Exists(
    RecordLock.objects.active().filter(patient=OuterRef("pk"), procedure__isnull=True)
)


def dashboard_patients(
    *, user, site: str = "", cohort: str = "", state: str = "", locked: str = ""
):
    """The patients the dashboard lists: those with an index procedure (stored, with its
    cohort, on the patient by ``registry.derived``)."""
    patients = (
        Patient.objects.for_user(user)
        .filter(index_procedure__isnull=False)
        .annotate(locked=RECORD_LOCKED)
    )
    if locked:
        patients = patients.filter(locked=locked == "yes")
    if site:
        patients = patients.filter(site__code=site)
    if cohort:
        patients = patients.filter(index_cohort=cohort)
    if state:
        patients = patients.filter(
            Exists(
                FollowUp.objects.annotate(cell=CELL_STATE).filter(
                    procedure_id=OuterRef("index_procedure_id"), cell=state
                )
            )
        )
    return patients


def status_dashboard(request: HttpRequest) -> HttpResponse:
    user = request.user
    if not user.has_perm("outcomes.view_followup"):
        raise PermissionDenied
    sites = list(Site.objects.for_user(user).order_by("code"))
    form = DashboardFilter(request.GET or None, sites=sites)
    filters = form.cleaned_data if form.is_valid() else {}
    patients = dashboard_patients(
        user=user,
        site=filters.get("site", ""),
        cohort=filters.get("cohort", ""),
        state=filters.get("state", ""),
        locked=filters.get("locked", ""),
    )
    paginator = Paginator(
        patients.order_by("registry_id").values(
            "pk", "registry_id", "site__code", "index_procedure_id", "locked"
        ),
        PAGE_SIZE,
    )
    page = paginator.get_page(request.GET.get("page"))
    rows = list(page.object_list)
    followups = FollowUp.objects.filter(
        procedure_id__in=[row["index_procedure_id"] for row in rows]
    ).annotate(cell=CELL_STATE)
    cells = {(f.procedure_id, f.timepoint): f for f in followups}
    open_queries = open_queries_by_patient(user=user, patient_ids=[row["pk"] for row in rows])
    timepoints = list(Timepoint)
    table = []
    for row in rows:
        row_cells = []
        for timepoint in timepoints:
            followup = cells.get((row["index_procedure_id"], timepoint.value))
            row_cells.append(
                {
                    "followup": followup,
                    "state": STATE_BY_VALUE.get(followup.cell) if followup else None,
                }
            )
        table.append({**row, "cells": row_cells, "open_queries": open_queries.get(row["pk"], 0)})
    totals = _totals(patients, timepoints)
    query = request.GET.copy()
    query.pop("page", None)
    context = {
        **admin.site.each_context(request),
        "title": _("Record status"),
        "form": form,
        "timepoints": timepoints,
        "table": table,
        "page": page,
        "states": STATES,
        "totals": totals,
        "query": query.urlencode(),
    }
    return render(request, "admin/staff/dashboard.html", context)


def _totals(patients, timepoints) -> list[dict]:
    """Per state, the number of follow-ups in each timepoint column over every filtered
    patient (not only this page), in one aggregate query."""
    counts = {
        (row["timepoint"], row["cell"]): row["n"]
        for row in FollowUp.objects.filter(procedure_id__in=patients.values("index_procedure_id"))
        .annotate(cell=CELL_STATE)
        .values("timepoint", "cell")
        .annotate(n=Count("pk"))
        .order_by()
    }
    return [
        {"state": state, "counts": [counts.get((tp.value, state.value), 0) for tp in timepoints]}
        for state in STATES
    ]
