"""Erasure of a patient's contact details on request (GDPR art. 17), keeping the clinical
record and its audit trail.

The contact's history never held the values (``registry.models.CONTACT_VALUES``), so
deleting the contact row leaves no name, email address or phone number in the database; the
deletion itself is an audit row (who, when, why) like any other change. Sessions holding one
of the values (an import kept in the session, a form) are ended too.
"""

from __future__ import annotations

import getpass
import logging

import pghistory
from django.contrib.sessions.models import Session
from django.db import transaction

from registry.models import Patient, PatientContact

log = logging.getLogger(__name__)


class ErasureError(Exception):
    pass


def contact_erase(*, registry_id: str, reason: str, operator: str | None = None) -> int:
    """Delete the contact details of the patient ``registry_id`` and end every session that
    holds one of their values; returns the number of sessions ended. ``reason`` (the request,
    its date, a case number) goes into the audit trail's context with ``operator``."""
    reason = reason.strip()
    if not reason:
        raise ErasureError("Give the reason for the erasure (e.g. the request and its date).")
    operator = operator or getpass.getuser()
    with transaction.atomic():
        patient = Patient.objects.filter(registry_id=registry_id).first()
        if patient is None:
            raise ErasureError(f"No patient has the registry id {registry_id}.")
        contact = PatientContact.objects.select_for_update().filter(patient=patient).first()
        if contact is None:
            raise ErasureError(f"{registry_id} has no contact details to erase.")
        values = [value for value in (contact.name, contact.email, contact.phone) if value]
        with pghistory.context(erasure=reason, operator=operator, registry_id=registry_id):
            contact.delete()
        ended = 0
        for session in Session.objects.select_for_update().iterator():
            data = str(session.get_decoded())
            if any(value in data for value in values):
                session.delete()
                ended += 1
    log.info("Contact details of %s erased by %s.", registry_id, operator)
    return ended
