"""Small ``make_*`` factories for tests: explicit, with sensible clinical defaults."""

from __future__ import annotations

import datetime
import itertools
import re
from decimal import Decimal

from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.db import connection, transaction

from registry.models import (
    Complication,
    Patient,
    PatientContact,
    Procedure,
    Site,
    TreatedLevel,
    patient_index_sql,
)
from registry.phones import phone_normalise

_counter = itertools.count(1)
TODAY = datetime.date(2026, 3, 2)


def make_site(code: str | None = None, **fields) -> Site:
    code = code or f"S{next(_counter):03d}"
    defaults = {
        "name": f"Site {code}",
        "time_zone": "Europe/Copenhagen",
        "contact_email": f"{code.lower()}@example.org",
        "eq5d_version": "5L",
        "eq5d_value_set": "DK-5L",
    }
    return Site.objects.create(code=code, **(defaults | fields))


def make_user(role: str = "Site staff", *sites: Site, username: str | None = None, **fields):
    username = username or f"user{next(_counter)}"
    user = get_user_model().objects.create_user(
        username=username, password="pw-for-tests-only", is_staff=True, **fields
    )
    if not Group.objects.filter(name=role).exists():
        ensure_role_groups()
    user.groups.add(Group.objects.get(name=role))
    for site in sites:
        site.members.add(user)
    return user


def make_patient(site: Site, **fields) -> Patient:
    n = next(_counter)
    defaults = {
        "registry_id": f"{site.code}-{n:05d}",
        "sex": Patient.Sex.FEMALE,
        "date_of_birth": datetime.date(1950, 5, 17),
        "consent_date": TODAY - datetime.timedelta(days=10),
    }
    return Patient.objects.create(site=site, **(defaults | fields))


def make_contact(patient: Patient, **fields) -> PatientContact:
    defaults = {
        "name": "Test Patient",
        "email": f"{patient.registry_id.lower()}@example.org",
        "preferred_language": "da",
        "consent_to_contact": True,
    }
    if fields.get("phone", "").startswith("+"):
        # Tests write numbers the way they are printed ("+45 20 30-40 50"); the database
        # holds E.164 only. (Made-up numbers need not be valid ones: the digits are kept.)
        fields["phone"] = "+" + re.sub(r"\D", "", fields["phone"])
    elif fields.get("phone"):  # a local number, read in the site's country as the forms do
        fields["phone"] = phone_normalise(fields["phone"], country=patient.site.country)
    return PatientContact.objects.create(patient=patient, **(defaults | fields))


def make_procedure(
    patient: Patient, *etiologies: str, first_level: int = TreatedLevel.Level.T12, **fields
) -> Procedure:
    """A procedure with one treated level per etiology given, from ``first_level`` (T12)
    downwards."""
    defaults = {
        "date": TODAY,
        "technique": Procedure.Technique.VERTEBROPLASTY,
        "anaesthesia": Procedure.Anaesthesia.LOCAL,
        "image_guidance": Procedure.ImageGuidance.FLUOROSCOPY,
        "indication": Procedure.Indication.PAINFUL_FRACTURE,
    }
    # One transaction: the database checks at commit that a procedure has a level.
    with transaction.atomic():
        procedure = Procedure.objects.create(patient=patient, **(defaults | fields))
        for offset, etiology in enumerate(etiologies):
            make_level(procedure, level=first_level + offset, etiology=etiology)
    return procedure


def make_procedure_without_levels(patient: Patient, **fields) -> Procedure:
    """A procedure with no treated level, as rows written before the database required one
    (the deferred ``procedure_has_a_level`` trigger is not queued for it)."""
    with connection.cursor() as cursor:
        cursor.execute("SET LOCAL session_replication_role = replica")
        try:
            procedure = make_procedure(patient, **fields)
        finally:
            cursor.execute("SET LOCAL session_replication_role = origin")
        # The patient's stored index procedure, as the skipped trigger would have set it.
        cursor.execute(patient_index_sql(str(patient.pk)))
    return procedure


def make_level(procedure: Procedure, **fields) -> TreatedLevel:
    defaults = {
        "level": TreatedLevel.Level.L1,
        "etiology": TreatedLevel.Etiology.OSTEOPOROTIC,
        "approach": TreatedLevel.Approach.BIPEDICULAR,
        "cement_volume_ml": Decimal("4.5"),
    }
    return TreatedLevel.objects.create(procedure=procedure, **(defaults | fields))


def make_complication(procedure: Procedure, **fields) -> Complication:
    defaults = {
        "patient": procedure.patient,
        "date": procedure.date,
        "type": Complication.Type.HAEMATOMA,
        "cirse_grade": 2,
        "relation": Complication.Relation.PROBABLE,
        "outcome": Complication.Outcome.RESOLVED,
    }
    return Complication.objects.create(procedure=procedure, **(defaults | fields))


def make_response(procedure: Procedure, timepoint: str = "baseline", **fields):
    """A scored response; pass ``eq5d="13224"`` and ``odi=[...]`` for the answers."""
    from outcomes.models import EQ5D_FIELDS, ODI_FIELDS, QuestionnaireResponse
    from outcomes.responses import response_save_scored

    state = fields.pop("eq5d", None)
    odi = fields.pop("odi", None)
    response = QuestionnaireResponse(
        procedure=procedure,
        timepoint=timepoint,
        mode=fields.pop("mode", "paper"),
        answered_on=fields.pop("answered_on", procedure.date),
        **fields,
    )
    if state:
        response.eq5d_version = procedure.patient.site.eq5d_version
        for field, level in zip(EQ5D_FIELDS, state, strict=True):
            setattr(response, field, int(level))
    if odi:
        for field, answer in zip(ODI_FIELDS, odi, strict=True):
            setattr(response, field, answer)
    return response_save_scored(response=response)


def ensure_role_groups() -> None:
    """Tests on a live server flush the database, which removes the role groups the
    migrations created (permissions come back by themselves): grant them again from the
    migrations' own role tables, for the transactional tests that follow."""
    from importlib import import_module

    from django.contrib.auth.models import Permission

    responses = import_module("outcomes.migrations.0002_response_permissions").ROLES
    grants = [
        ("registry", import_module("registry.migrations.0002_role_groups").ROLES),
        (
            "outcomes",
            import_module("outcomes.migrations.0004_cancel_followups_on_death_or_withdrawal").ROLES,
        ),
        ("outcomes", {n: {"questionnaireresponse": a} for n, a in responses.items()}),
    ]
    lock_and_sign = import_module("registry.migrations.0019_i29_lock_and_sign_roles")
    grants.append(("registry", lock_and_sign.ROLES))
    grants.append(("outcomes", import_module("outcomes.migrations.0019_i29_consent_roles").ROLES))
    for app_label, roles in grants:
        for name, models in roles.items():
            group, _created = Group.objects.get_or_create(name=name)
            codenames = lock_and_sign.codenames(models)
            group.permissions.add(
                *Permission.objects.filter(
                    content_type__app_label=app_label, codename__in=codenames
                )
            )
    # Queries to sites and warnings saved anyway: granted in registry 0008, to outcomes' models
    # since outcomes 0015 moved them there.
    quality = import_module("registry.migrations.0008_data_queries_and_warnings_saved_anyway")
    for name, codenames in quality.QUALITY_ROLES.items():
        group, _created = Group.objects.get_or_create(name=name)
        group.permissions.add(
            *Permission.objects.filter(content_type__app_label="outcomes", codename__in=codenames)
        )
