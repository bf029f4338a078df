"""Investigators' electronic signatures over records (21 CFR Part 11 / EU GMP Annex 11 style).

A site investigator signs a patient's record, or one follow-up's data, after reviewing it:
they enter their password again (and a code from their authenticator when they have one),
choose what the signature means, and the signature stores who, when, the meaning and the
SHA-256 of the data signed. The database voids it when any of those data change afterwards
(``registry.locking``), and the record page also recomputes the hash, so a change made behind
the triggers' back shows the signature void too. A void signature stays in the history; the
record asks for a new one.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass

import pghistory
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction
from django.utils.translation import gettext_lazy as _
from django_otp import devices_for_user

from outcomes.models import QuestionnaireResponse, Timepoint
from registry.locking import NOT_DATA
from registry.models import Complication, Patient, Procedure, Signature, TreatedLevel

SIGN_PERMISSION = "registry.sign_record"


def _not_data(model) -> set[str]:
    """The columns whose change is not a change of the data: the guard triggers' list, so the
    hash and the database's voiding agree on what the signed data are."""
    for trigger in model._meta.triggers:
        if trigger.name == "record_guard_on_update":
            return set(trigger.not_data)
    return set(NOT_DATA)


def _rows(queryset) -> list[dict]:
    model = queryset.model
    skip = _not_data(model)
    columns = [f.attname for f in model._meta.concrete_fields if f.column not in skip]
    return list(queryset.order_by("pk").values(*columns))


def _querysets(patient: Patient, procedure: Procedure | None, timepoint: str):
    if procedure is not None:
        return {
            "responses": QuestionnaireResponse.objects.filter(
                procedure=procedure, timepoint=timepoint
            )
        }
    procedures = Procedure.objects.filter(patient=patient)
    return {
        "patient": Patient.objects.filter(pk=patient.pk),
        "procedures": procedures,
        "levels": TreatedLevel.objects.filter(procedure__patient=patient),
        "complications": Complication.objects.filter(patient=patient),
        "responses": QuestionnaireResponse.objects.filter(procedure__patient=patient),
    }


def record_data(
    patient: Patient, *, procedure: Procedure | None = None, timepoint: str = ""
) -> dict:
    """The data a signature covers, as plain values: every row of the record, by table, in
    id order, without timestamps and stored derived values."""
    data = {name: _rows(qs) for name, qs in _querysets(patient, procedure, timepoint).items()}
    data["record"] = {
        "patient": patient.pk,
        "procedure": getattr(procedure, "pk", None),
        "timepoint": timepoint,
    }
    return data


def data_hash(data: dict) -> str:
    """SHA-256 (hex) of the canonical JSON of ``data``: sorted keys, no spaces, dates and
    decimals as their ISO / plain text."""
    text = json.dumps(data, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode()).hexdigest()


def record_hash(patient: Patient, *, procedure: Procedure | None = None, timepoint: str = ""):
    return data_hash(record_data(patient, procedure=procedure, timepoint=timepoint))


def _check_identity(user, password: str, otp_token: str) -> None:
    errors = {}
    if not password or not user.check_password(password):
        errors["password"] = _("The password is not right.")
    devices = list(devices_for_user(user, confirmed=True))
    if devices:
        token = (otp_token or "").strip()
        if not token or not any(device.verify_token(token) for device in devices):
            errors["otp_token"] = _("The code from your authenticator is not right.")
    if errors:
        raise ValidationError(errors)


@transaction.atomic
def record_sign(
    *,
    patient: Patient,
    user,
    password: str,
    meaning: str,
    otp_token: str = "",
    procedure: Procedure | None = None,
    timepoint: str = "",
) -> Signature:
    """Sign the patient's record (or one follow-up's data) as ``user``, after checking their
    password and second factor again."""
    if not user.has_perm(SIGN_PERMISSION):
        raise PermissionDenied(_("Only site investigators sign records."))
    if not Patient.objects.for_user(user).filter(pk=patient.pk).exists():
        raise PermissionDenied(_("No such record at your sites."))
    if meaning not in Signature.Meaning.values:
        raise ValidationError({"meaning": _("Choose what your signature means.")})
    if (procedure is None) != (not timepoint) or (timepoint and timepoint not in Timepoint.values):
        raise ValidationError(_("A follow-up signature names the procedure and the timepoint."))
    if procedure is not None and procedure.patient_id != patient.pk:
        raise ValidationError(_("This procedure is not the patient's."))
    _check_identity(user, password, otp_token)
    # Hold every row of the record until the signature is stored: a change committed between
    # hashing and storing would otherwise leave a valid signature over data not signed.
    # FOR UPDATE on the patient and procedures also holds back new rows pointing at them.
    for queryset in _querysets(patient, procedure, timepoint).values():
        list(queryset.select_for_update().values_list("pk", flat=True))
    if procedure is not None:
        Procedure.objects.select_for_update().filter(pk=procedure.pk).exists()
    digest = record_hash(patient, procedure=procedure, timepoint=timepoint)
    with pghistory.context(user=user.pk):
        return Signature.objects.create(
            patient=patient,
            procedure=procedure,
            timepoint=timepoint,
            signer=user,
            signer_name=user.get_full_name() or user.get_username(),
            meaning=meaning,
            data_hash=digest,
        )


@dataclass(frozen=True)
class SignatureState:
    signature: Signature
    valid: bool
    why_void: str


def signatures_of(patient: Patient) -> list[SignatureState]:
    """The patient's signatures, newest first, each valid only when the database has not
    voided it and the data still hash to what was signed."""
    states = []
    hashes: dict[tuple, str] = {}
    signatures = Signature.objects.filter(patient=patient).select_related("procedure", "signer")
    for signature in signatures:
        if signature.voided_at is not None:
            states.append(SignatureState(signature, False, signature.void_reason))
            continue
        key = (signature.procedure_id, signature.timepoint)
        if key not in hashes:
            hashes[key] = record_hash(
                patient, procedure=signature.procedure, timepoint=signature.timepoint
            )
        if hashes[key] != signature.data_hash:
            states.append(
                SignatureState(signature, False, str(_("the data differ from those signed")))
            )
        else:
            states.append(SignatureState(signature, True, ""))
    return states
