"""Likely duplicate patients: the same person entered twice.

The one rule: two patients are likely the same person when they have the same date of birth
and a similar name (pg_trgm similarity of at least ``SIMILAR_NAME``, or the same letters in any
case), or the same email address (any case), or the same phone number (its last
``PHONE_KEY_DIGITS`` digits, whatever the spaces and country code). At entry it is checked
among the patients of the same site and shown as a warning that needs "save anyway" with a
reason (registry.warnings); the data-quality rule DQ11 lists the patients with a likely
duplicate anywhere in the registry.

The messages name registry ids only, never names or contact details: they are stored with the
acknowledgement and shown to roles that may not see who the patient is.
"""

from __future__ import annotations

import datetime
import re

from django.contrib.postgres.search import TrigramSimilarity
from django.db.models import Q, QuerySet
from django.db.models.expressions import RawSQL
from django.db.models.functions import Upper
from django.utils.translation import gettext_lazy as _

from registry.models import PHONE_DIGITS, Patient, PatientContact
from registry.warnings import EntryWarning

SIMILAR_NAME = 0.5
# A phone number is compared by its last eight digits (a Danish number without the country
# code: "+45 20 30 40 50" and "20304050" are the same phone).
PHONE_KEY_DIGITS = 8


def _digits(phone: str) -> str:
    return re.sub(r"\D", "", phone or "")


def likely_duplicates(
    *,
    site_id: int | None,
    date_of_birth: datetime.date | None,
    name: str = "",
    email: str = "",
    phone: str = "",
    exclude_pk: int | None = None,
) -> list[tuple[Patient, list[str]]]:
    """Patients (at ``site_id``, or anywhere with None) who are likely the person described,
    each with what matched: "birth_name", "email", "phone". Each test runs through an index
    (site and birth date, the contact's email and phone-digit trigram indexes)."""
    patients = Patient.objects.all() if site_id is None else Patient.objects.filter(site_id=site_id)
    if exclude_pk is not None:
        patients = patients.exclude(pk=exclude_pk)
    found: dict[int, list[str]] = {}
    name = (name or "").strip()
    if date_of_birth and name:
        for pk in (
            patients.filter(date_of_birth=date_of_birth)
            .annotate(similar=TrigramSimilarity(Upper("contact__name"), name.upper()))
            .filter(Q(similar__gte=SIMILAR_NAME) | Q(contact__name__iexact=name))
            .values_list("pk", flat=True)
        ):
            found.setdefault(pk, []).append("birth_name")
    if (email or "").strip():
        contacts = PatientContact.objects.annotate(_email=Upper("email")).filter(
            _email=email.strip().upper()
        )
        for pk in patients.filter(pk__in=contacts.values("patient_id")).values_list(
            "pk", flat=True
        ):
            found.setdefault(pk, []).append("email")
    digits = _digits(phone)
    if len(digits) >= PHONE_KEY_DIGITS:
        contacts = PatientContact.objects.annotate(_digits=PHONE_DIGITS).filter(
            _digits__endswith=digits[-PHONE_KEY_DIGITS:]
        )
        for pk in patients.filter(pk__in=contacts.values("patient_id")).values_list(
            "pk", flat=True
        ):
            found.setdefault(pk, []).append("phone")
    by_pk = Patient.objects.in_bulk(list(found))
    return sorted(
        ((by_pk[pk], matched) for pk, matched in found.items()),
        key=lambda pair: pair[0].registry_id,
    )


MATCH_LABELS = {
    "birth_name": _("same date of birth and a similar name"),
    "email": _("same email"),
    "phone": _("same phone"),
}


def duplicate_warnings(
    *, site_id, date_of_birth, name, email, phone, exclude_pk=None
) -> list[EntryWarning]:
    """The "likely duplicate" warning for a patient about to be saved at ``site_id``."""
    matches = likely_duplicates(
        site_id=site_id,
        date_of_birth=date_of_birth,
        name=name,
        email=email,
        phone=phone,
        exclude_pk=exclude_pk,
    )
    if not matches:
        return []
    listed = "; ".join(
        f"{patient.registry_id} ({', '.join(str(MATCH_LABELS[m]) for m in matched)})"
        for patient, matched in matches[:5]
    )
    return [
        EntryWarning(
            "likely_duplicate",
            str(
                _("This may be a patient already registered at the site: %(patients)s.")
                % {"patients": listed}
            ),
        )
    ]


# The same tests across the registry, as one statement (a self-join per test, each through
# an index: the birth-date index, and equality on the contact's email and phone digits).
_ANYWHERE_SQL = """
SELECT ca.patient_id FROM registry_patientcontact ca
  JOIN registry_patientcontact cb ON upper(cb.email) = upper(ca.email) AND cb.id <> ca.id
 WHERE ca.email <> ''
UNION
SELECT ca.patient_id FROM registry_patientcontact ca
  JOIN registry_patientcontact cb
    ON right(regexp_replace(cb.phone, '\\D', '', 'g'), %s)
     = right(regexp_replace(ca.phone, '\\D', '', 'g'), %s)
   AND cb.id <> ca.id
 WHERE length(regexp_replace(ca.phone, '\\D', '', 'g')) >= %s
   AND length(regexp_replace(cb.phone, '\\D', '', 'g')) >= %s
UNION
SELECT a.id FROM registry_patient a
  JOIN registry_patient b ON b.date_of_birth = a.date_of_birth AND b.id <> a.id
  JOIN registry_patientcontact ca ON ca.patient_id = a.id
  JOIN registry_patientcontact cb ON cb.patient_id = b.id
 WHERE ca.name <> '' AND cb.name <> ''
   AND (upper(ca.name) = upper(cb.name)
        OR similarity(upper(ca.name), upper(cb.name)) >= %s)
"""


def patients_with_likely_duplicates(patients: QuerySet) -> QuerySet:
    """Those of ``patients`` who have a likely duplicate anywhere in the registry (the
    data-quality rule DQ11): the tests of ``likely_duplicates``, in SQL."""
    # A constant statement; the thresholds go as parameters.
    found = RawSQL(_ANYWHERE_SQL, [PHONE_KEY_DIGITS] * 4 + [SIMILAR_NAME])  # noqa: S611
    return patients.filter(pk__in=found)
