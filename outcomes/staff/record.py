"""The patient record: everything about one patient on one page, with the actions from there."""

from __future__ import annotations

import datetime
from dataclasses import dataclass, field
from zoneinfo import ZoneInfo

from django.contrib import admin, messages
from django.contrib.auth import get_user_model
from django.contrib.contenttypes.models import ContentType
from django.core.exceptions import PermissionDenied, ValidationError
from django.db.models import OuterRef, Q
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone
from django.utils.http import urlencode
from django.utils.translation import gettext_lazy as _

from outcomes.consent.models import ConsentDocument, PatientConsent
from outcomes.consent.services import STATE_LABELS, consent_status
from outcomes.followups.links import ANSWERABLE_STATES
from outcomes.models import ContactAttempt, FollowUp, QuestionnaireResponse, Timepoint
from outcomes.quality.models import DataQuery
from outcomes.quality.queries import ANSWER_PERMISSION, dataquery_answer, query_field_label
from outcomes.records.locking import LOCK_PERMISSION
from outcomes.records.signing import SIGN_PERMISSION, signatures_of
from registry.access import may_see_contact
from registry.json_rows import json_instances, json_rows
from registry.models import (
    Cohort,
    Complication,
    Patient,
    PatientContact,
    Procedure,
    RecordLock,
    TreatedLevel,
)

USER_FIELDS = ["id", "username"]  # a staff user named on the page: str(user) is the username


@dataclass
class FollowUpRow:
    followup: FollowUp
    response: QuestionnaireResponse | None
    attempts: list[ContactAttempt]
    enter_url: str = ""
    send_url: str = ""
    lock: RecordLock | None = None
    lock_url: str = ""
    sign_url: str = ""


@dataclass
class ProcedureBlock:
    procedure: Procedure
    cohort_label: str
    levels: list[TreatedLevel]
    complications: list[Complication]
    followups: list[FollowUpRow] = field(default_factory=list)


def _open_queries(user, patient, procedures, complications) -> list[DataQuery]:
    """Queries not yet closed on any record of the patient: the patient, their procedures,
    treated levels, complications and questionnaire responses."""
    records = {
        Patient: [patient.pk],
        Procedure: [p.pk for p in procedures],
        TreatedLevel: [level.pk for p in procedures for level in p.level_list],
        Complication: [c.pk for c in complications],
        QuestionnaireResponse: [r.pk for p in procedures for r in p.response_list],
    }
    condition = Q()
    for model, ids in records.items():
        if ids:
            content_type = ContentType.objects.get_for_model(model)
            condition |= Q(content_type=content_type, object_id__in=ids)
    queries = list(
        DataQuery.objects.for_user(user)
        .filter(condition)
        .exclude(state=DataQuery.State.CLOSED)
        .select_related("raised_by", "content_type")
        .order_by("raised_at", "pk")
    )
    for query in queries:
        # "phone (contact details)", not "contact.phone".
        query.field_label = query_field_label(query)
    return queries


def _answer_query(request: HttpRequest, patient: Patient) -> HttpResponse:
    """Answer a query in place, from the record page (the query's own page does the same)."""
    query_id = request.POST.get("query", "")
    query = (
        DataQuery.objects.for_user(request.user)
        .filter(pk=int(query_id) if query_id.isdigit() else 0)
        .first()
    )
    if query is None:
        raise Http404(_("No such query at your sites."))
    try:
        dataquery_answer(query=query, user=request.user, answer=request.POST.get("answer", ""))
    except ValidationError as error:
        messages.error(request, " ".join(error.messages))
    else:
        messages.success(request, _("Query answered: %(record)s.") % {"record": query})
    return redirect(request.get_full_path())


def patient_record(request: HttpRequest, registry_id: str) -> HttpResponse:
    user = request.user
    if not user.has_perm("registry.view_patient"):
        raise PermissionDenied
    can_contact = may_see_contact(user)
    # The patient with their complications, active locks and their site's consent documents;
    # the procedures with their levels, follow-ups, messages and responses: two queries
    # (registry.json_rows), not one per relation, so the page keeps to eight (issue 32).
    patients = (
        Patient.objects.for_user(user)
        .select_related("site", *(["contact"] if can_contact else []))
        .with_index_procedure()
        .filter(registry_id=registry_id)
        .annotate(
            complication_rows=json_rows(
                Complication.objects.filter(patient=OuterRef("pk")).order_by("date", "pk")
            ),
            lock_rows=json_rows(
                RecordLock.objects.active().filter(patient=OuterRef("pk")),
                related={"locked_by": USER_FIELDS},
            ),
            document_rows=json_rows(
                ConsentDocument.objects.filter(site=OuterRef("site_id")).order_by(
                    *ConsentDocument._meta.ordering
                ),
                exclude=["text"],
            ),
        )
    )
    patient = patients.first()
    if patient is None:
        raise Http404(_("No such record at your sites."))
    if request.method == "POST":
        return _answer_query(request, patient)
    site_zone = ZoneInfo(patient.site.time_zone)
    today = timezone.now().astimezone(site_zone).date()
    contact = None
    if can_contact:
        try:
            contact = patient.contact
        except PatientContact.DoesNotExist:
            contact = None
    user_model = get_user_model()
    procedures = list(
        Procedure.objects.filter(patient=patient)
        .order_by("date", "pk")
        .annotate(
            level_rows=json_rows(
                TreatedLevel.objects.filter(procedure=OuterRef("pk")).order_by("level", "pk")
            ),
            followup_rows=json_rows(
                FollowUp.objects.filter(procedure=OuterRef("pk")).order_by("due_date", "pk")
            ),
            attempt_rows=json_rows(
                ContactAttempt.objects.filter(followup__procedure=OuterRef("pk")).order_by(
                    "created_at", "pk"
                ),
                related={"sent_by": USER_FIELDS},
            ),
            response_rows=json_rows(QuestionnaireResponse.objects.filter(procedure=OuterRef("pk"))),
        )
    )
    levels_by_id = {}
    for procedure in procedures:
        procedure.level_list = json_instances(TreatedLevel, procedure.level_rows)
        procedure.response_list = json_instances(QuestionnaireResponse, procedure.response_rows)
        procedure.followup_list = json_instances(FollowUp, procedure.followup_rows)
        attempts = json_instances(
            ContactAttempt, procedure.attempt_rows, related={"sent_by": user_model}
        )
        for followup in procedure.followup_list:
            followup.attempt_list = [a for a in attempts if a.followup_id == followup.pk]
        levels_by_id.update((level.pk, level) for level in procedure.level_list)
    complications = json_instances(Complication, patient.complication_rows)
    for complication in complications:
        # The level named is one of the patient's, read with the procedures.
        complication._state.fields_cache["treated_level"] = levels_by_id.get(
            complication.treated_level_id
        )
    can_change = user.has_perm("outcomes.change_followup")
    can_enter = user.has_perm("outcomes.add_questionnaireresponse")
    here = request.get_full_path()
    locks = json_instances(RecordLock, patient.lock_rows, related={"locked_by": user_model})
    record_lock = next((lock for lock in locks if lock.procedure_id is None), None)
    can_lock = user.has_perm(LOCK_PERMISSION)
    can_sign = user.has_perm(SIGN_PERMISSION)
    signatures = signatures_of(patient)
    consents = list(
        PatientConsent.objects.filter(patient=patient)
        .select_related("document", "recorded_by")
        .defer("snapshot_pdf", "scan")
        .order_by("-given_at", "-pk")
    )
    documents = json_instances(ConsentDocument, patient.document_rows, exclude=["text"])
    _latest, consent_state = consent_status(
        patient, on=today, consents=consents, documents=documents
    )
    record_signatures = [s for s in signatures if s.signature.procedure_id is None]
    blocks = []
    for procedure in procedures:
        responses = {r.timepoint: r for r in procedure.response_list}
        block = ProcedureBlock(
            procedure=procedure,
            cohort_label=Cohort(procedure.cohort).label,
            levels=procedure.level_list,
            complications=[c for c in complications if c.procedure_id == procedure.pk],
        )
        for followup in procedure.followup_list:
            row = FollowUpRow(
                followup=followup,
                response=responses.get(followup.timepoint),
                attempts=followup.attempt_list,
            )
            if row.response is None and can_enter and followup.window_start <= today:
                mode = "clinic" if followup.timepoint == Timepoint.BASELINE else "paper"
                row.enter_url = (
                    reverse("admin:outcomes_questionnaireresponse_add")
                    + "?"
                    + (
                        urlencode(
                            {
                                "procedure": procedure.pk,
                                "timepoint": followup.timepoint,
                                "mode": mode,
                                "next": here,
                            }
                        )
                    )
                )
            if (
                can_change
                and followup.state in (FollowUp.State.SCHEDULED, *ANSWERABLE_STATES)
                and followup.window_start <= today <= followup.window_end
                and patient.date_of_death is None
                and patient.consent_withdrawn_date is None
            ):
                row.send_url = (
                    reverse("admin:outcomes_followup_send_link", args=[followup.pk])
                    + "?"
                    + urlencode({"next": here})
                )
            row.lock = record_lock or next(
                (
                    lock
                    for lock in locks
                    if (lock.procedure_id, lock.timepoint) == (procedure.pk, followup.timepoint)
                ),
                None,
            )
            follow_up = urlencode({"procedure": procedure.pk, "timepoint": followup.timepoint})
            if row.lock is not None:
                row.enter_url = ""
            elif can_lock:
                row.lock_url = f"{reverse('record_lock', args=[patient.registry_id])}?{follow_up}"
            if can_sign and row.response is not None:
                row.sign_url = f"{reverse('record_sign', args=[patient.registry_id])}?{follow_up}"
            block.followups.append(row)
        blocks.append(block)
    unlinked = [c for c in complications if c.procedure_id is None]
    open_queries = _open_queries(user, patient, procedures, complications)
    context = {
        **admin.site.each_context(request),
        "title": _("Patient record %(id)s") % {"id": patient.registry_id},
        "patient": patient,
        "age": _age(patient.date_of_birth, today),
        "index_cohort": Cohort(patient.index_cohort).label if patient.index_cohort else "–",
        "contact": contact,
        "can_contact": can_contact,
        "blocks": blocks,
        "unlinked_complications": unlinked,
        "time_zone": patient.site.time_zone,
        "today": today,
        "actions": _actions(user, patient, here),
        "open_queries": open_queries,
        "can_answer": user.has_perm(ANSWER_PERMISSION),
        "locks": locks,
        "record_lock": record_lock,
        "can_lock": can_lock,
        "can_sign": can_sign,
        "signatures": signatures,
        "needs_signature": bool(record_signatures) and not record_signatures[0].valid,
        "consents": consents,
        "consent_state": STATE_LABELS[consent_state],
        "can_manage_consent": user.has_perm("registry.change_patient"),
    }
    return render(request, "admin/staff/patient_record.html", context)


def _age(born: datetime.date, today: datetime.date) -> int:
    return today.year - born.year - ((today.month, today.day) < (born.month, born.day))


def _actions(user, patient: Patient, here: str) -> list[tuple[str, str]]:
    actions = []
    back = {"next": here}
    if user.has_perm("registry.add_procedure"):
        actions.append(
            (
                _("Add a procedure"),
                reverse("admin:registry_procedure_add")
                + "?"
                + urlencode({"patient": patient.pk, **back}),
            )
        )
    if user.has_perm("registry.add_complication"):
        actions.append(
            (
                _("Add a complication"),
                reverse("admin:registry_complication_add")
                + "?"
                + urlencode({"patient": patient.pk, **back}),
            )
        )
    if user.has_perm("registry.change_patient"):
        actions.append(
            (
                _("Record death or withdrawal, edit details"),
                reverse("admin:registry_patient_change", args=[patient.pk]),
            )
        )
    actions.append(
        (_("History of this record"), reverse("admin:registry_patient_history", args=[patient.pk]))
    )
    return actions
