"""Locking and unlocking records (the database refuses changes: ``registry.locking``).

A data manager locks a patient's record (or one follow-up's data) with a reason once it is
verified, by hand on the record page or in bulk (``manage.py lock_records``). Unresolved
queries to the site (open or answered, not yet closed) on any part of the record block the
lock: data still in question are not verified. Unlocking needs a reason too; every lock and
unlock is a history event with the acting user.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import pghistory
from django.contrib.contenttypes.models import ContentType
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import IntegrityError, transaction
from django.db.models import Q
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from outcomes.models import FollowUp, QuestionnaireResponse, Timepoint
from outcomes.quality.models import DataQuery
from registry.models import Complication, Patient, Procedure, RecordLock, TreatedLevel

LOCK_PERMISSION = "registry.lock_record"


def _records_of(patient: Patient, *, procedure: Procedure | None = None, timepoint: str = "") -> Q:
    """Data queries about the record: the patient and everything recorded about them, or
    one follow-up and its response."""

    def about(model, ids) -> Q:
        return Q(content_type=ContentType.objects.get_for_model(model), object_id__in=ids)

    if procedure is not None:
        follow_up = {"procedure": procedure, "timepoint": timepoint}
        return about(
            QuestionnaireResponse,
            QuestionnaireResponse.objects.filter(**follow_up).values("pk"),
        ) | about(FollowUp, FollowUp.objects.filter(**follow_up).values("pk"))
    procedures = Procedure.objects.filter(patient=patient).values("pk")
    return (
        about(Patient, [patient.pk])
        | about(Procedure, procedures)
        | about(TreatedLevel, TreatedLevel.objects.filter(procedure__in=procedures).values("pk"))
        | about(Complication, Complication.objects.filter(patient=patient).values("pk"))
        | about(
            QuestionnaireResponse,
            QuestionnaireResponse.objects.filter(procedure__in=procedures).values("pk"),
        )
        | about(FollowUp, FollowUp.objects.filter(procedure__in=procedures).values("pk"))
    )


def unresolved_queries(
    patient: Patient, *, procedure: Procedure | None = None, timepoint: str = ""
) -> list[DataQuery]:
    """Queries to the site about the record that are not closed (open or answered)."""
    return list(
        DataQuery.objects.exclude(state=DataQuery.State.CLOSED)
        .filter(_records_of(patient, procedure=procedure, timepoint=timepoint))
        .order_by("raised_at", "pk")
    )


def _reason(text: str, field: str) -> str:
    text = (text or "").strip()
    if not text:
        raise ValidationError({field: _("Give the reason: it is kept in the audit trail.")})
    return text


@transaction.atomic
def record_lock(
    *,
    patient: Patient,
    user,
    reason: str,
    procedure: Procedure | None = None,
    timepoint: str = "",
) -> RecordLock:
    """Lock the patient's record (or, with ``procedure`` and ``timepoint``, that follow-up's
    data) against every change, with ``reason``. Refused while queries about it are open."""
    if user is not None and not user.has_perm(LOCK_PERMISSION):
        raise PermissionDenied(_("Only data managers lock records."))
    reason = _reason(reason, "reason")
    if (procedure is None) != (not timepoint):
        raise ValidationError(_("A follow-up lock names both the procedure and the timepoint."))
    if timepoint and timepoint not in Timepoint.values:
        raise ValidationError({"timepoint": _("Choose a timepoint of the follow-up plan.")})
    if procedure is not None and procedure.patient_id != patient.pk:
        raise ValidationError(_("This procedure is not the patient's."))
    # The patient row is locked first, so a query raised meanwhile waits for this decision.
    Patient.objects.select_for_update().filter(pk=patient.pk).first()
    open_queries = unresolved_queries(patient, procedure=procedure, timepoint=timepoint)
    if open_queries:
        raise ValidationError(
            _(
                "%(n)d query(ies) about this record are not closed (%(fields)s): "
                "resolve them before locking."
            )
            % {
                "n": len(open_queries),
                "fields": ", ".join(f"{q.record_label} · {q.field_name}" for q in open_queries),
            }
        )
    covering = RecordLock.objects.covering(
        patient_id=patient.pk, procedure_id=getattr(procedure, "pk", None), timepoint=timepoint
    )
    if covering.exists():
        raise ValidationError(_("This record is already locked."))
    with pghistory.context(user=getattr(user, "pk", None)):
        try:
            with transaction.atomic():
                return RecordLock.objects.create(
                    patient=patient,
                    procedure=procedure,
                    timepoint=timepoint,
                    reason=reason,
                    locked_by=user,
                )
        except IntegrityError as error:  # a second data manager locked it meanwhile
            raise ValidationError(_("This record is already locked.")) from error


@transaction.atomic
def record_unlock(*, lock: RecordLock, user, reason: str) -> RecordLock:
    """Unlock with ``reason``: the record accepts changes again."""
    if user is not None and not user.has_perm(LOCK_PERMISSION):
        raise PermissionDenied(_("Only data managers unlock records."))
    reason = _reason(reason, "unlock_reason")
    lock = RecordLock.objects.select_for_update().get(pk=lock.pk)
    if lock.unlocked_at is not None:
        raise ValidationError(_("This lock was already lifted."))
    lock.unlocked_at = timezone.now()
    lock.unlocked_by = user
    lock.unlock_reason = reason
    with pghistory.context(user=getattr(user, "pk", None)):
        lock.save(update_fields=["unlocked_at", "unlocked_by", "unlock_reason"])
    return lock


@dataclass
class BulkResult:
    done: list[str]
    refused: list[tuple[str, str]]  # (registry id, why)


def _message(error: ValidationError) -> str:
    return " ".join(str(m) for m in error.messages)


def records_lock(*, patients: Iterable[Patient], user, reason: str) -> BulkResult:
    """Lock each patient's record, each in its own transaction: one refused (open queries,
    already locked) does not keep the others unlocked."""
    result = BulkResult(done=[], refused=[])
    for patient in patients:
        try:
            record_lock(patient=patient, user=user, reason=reason)
        except ValidationError as error:
            result.refused.append((patient.registry_id, _message(error)))
        else:
            result.done.append(patient.registry_id)
    return result


def records_unlock(*, patients: Iterable[Patient], user, reason: str) -> BulkResult:
    """Lift every active lock (whole record and follow-ups) of each patient."""
    result = BulkResult(done=[], refused=[])
    for patient in patients:
        locks = list(RecordLock.objects.active().filter(patient=patient))
        if not locks:
            result.refused.append((patient.registry_id, str(_("not locked"))))
            continue
        for lock in locks:
            record_unlock(lock=lock, user=user, reason=reason)
        result.done.append(patient.registry_id)
    return result
