"""The record status dashboard: patients × timepoints of their index procedure, like REDCap's.

Three queries per page whatever the cohort size: the count, one page of patients (with their
open queries to the site) and their follow-ups. The column totals are counted from the page's
own cells: an aggregate over every filtered patient cost a scan of all follow-ups on every page
(2.8 s at 1.4M follow-ups, issue 32), so the page's cost grows with the page, not the registry.
The index procedure and its cohort are ``Patient.index_procedure`` and ``Patient.index_cohort``,
stored from the one rule of each (``registry.derived``), so the dashboard, the report and the
exports agree.
"""

from __future__ import annotations

from dataclasses import dataclass

from django import forms
from django.contrib import admin
from django.core.exceptions import PermissionDenied
from django.core.paginator import Paginator
from django.db.models import Case, CharField, Exists, F, OuterRef, Value, When
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.utils.translation import gettext_lazy as _

from outcomes.models import FollowUp, Timepoint, on_worklist_q
from outcomes.quality.queries import open_query_count
from registry.access import may_see_contact
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
    q = forms.CharField(label=_("Search"), required=False, max_length=200, strip=True)
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
    timepoint = forms.ChoiceField(
        label=_("At timepoint"),
        required=False,
        choices=[("", _("any timepoint")), *Timepoint.choices],
    )
    locked = forms.ChoiceField(
        label=_("Lock"),
        required=False,
        choices=[("", _("Locked or not")), ("yes", _("Locked records")), ("no", _("Not locked"))],
    )

    def __init__(self, *args, sites, by_contact: bool = False, **kwargs):
        super().__init__(*args, **kwargs)
        # Who may see contact details finds patients by them too (PatientQuerySet.search).
        self.fields["q"].help_text = (
            _("Registry id, name, phone, email or date of birth")
            if by_contact
            else _("Registry id")
        )
        self.fields["site"].choices = [("", _("All my sites"))] + [
            (site.code, f"{site.code} – {site.name}") for site in sites
        ]


# The patient's whole record is locked (registry.locking); a follow-up lock shows on the record.
RECORD_LOCKED = Exists(
    RecordLock.objects.active().filter(patient=OuterRef("pk"), procedure__isnull=True)
)


def dashboard_patients(
    *,
    user,
    site: str = "",
    cohort: str = "",
    state: str = "",
    locked: str = "",
    timepoint: str = "",
    q: str = "",
):
    """The patients the dashboard lists: those with an index procedure (stored, with its
    cohort, on the patient by ``registry.derived``); ``state`` with ``timepoint``: a
    follow-up of that timepoint is in that state (any timepoint without it); ``q``: the
    patient search (registry id, and contact details for who may see them)."""
    patients = (
        Patient.objects.for_user(user)
        .filter(index_procedure__isnull=False)
        .annotate(locked=RECORD_LOCKED)
    )
    if q:
        patients = patients.search(q, by_contact=may_see_contact(user))
    if locked:
        patients = patients.filter(locked=locked == "yes")
    if site:
        patients = patients.filter(site__code=site)
    if cohort:
        patients = patients.filter(index_cohort=cohort)
    if state:
        followups = FollowUp.objects.annotate(cell=CELL_STATE).filter(
            procedure_id=OuterRef("index_procedure_id"), cell=state
        )
        if timepoint:
            followups = followups.filter(timepoint=timepoint)
        patients = patients.filter(Exists(followups))
    return patients


def status_dashboard(request: HttpRequest) -> HttpResponse:
    user = request.user
    if not user.has_perm("outcomes.view_followup"):
        raise PermissionDenied
    sites = list(Site.objects.for_user(user).order_by("code"))
    form = DashboardFilter(request.GET or None, sites=sites, by_contact=may_see_contact(user))
    filters = form.cleaned_data if form.is_valid() else {}
    patients = dashboard_patients(
        user=user,
        site=filters.get("site", ""),
        cohort=filters.get("cohort", ""),
        state=filters.get("state", ""),
        locked=filters.get("locked", ""),
        timepoint=filters.get("timepoint", ""),
        q=filters.get("q", ""),
    )
    paginator = Paginator(
        patients.order_by("registry_id")
        .annotate(open_queries=open_query_count(user=user))
        .values("pk", "registry_id", "site__code", "index_procedure_id", "locked", "open_queries"),
        PAGE_SIZE,
    )
    page = paginator.get_page(request.GET.get("page"))
    rows = list(page.object_list)
    followups = FollowUp.objects.filter(
        procedure_id__in=[row["index_procedure_id"] for row in rows]
    ).annotate(cell=CELL_STATE)
    cells = {(f.procedure_id, f.timepoint): f for f in followups}
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
        table.append({**row, "cells": row_cells})
    totals = _totals(table)
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


def _totals(table: list[dict]) -> list[dict]:
    """Per state, the number of follow-ups in each timepoint column of this page's rows."""
    columns = len(Timepoint)
    counts = {state.value: [0] * columns for state in STATES}
    for row in table:
        for column, cell in enumerate(row["cells"]):
            if cell["state"] is not None:
                counts[cell["state"].value][column] += 1
    return [{"state": state, "counts": counts[state.value]} for state in STATES]
