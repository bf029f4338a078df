import datetime

import pytest
from django.db import transaction
from rest_framework.test import APIClient

from api.services import api_token_create
from outcomes.followups.sweep import followups_ensure
from registry.models import TreatedLevel
from tests.factories import (
    make_complication,
    make_contact,
    make_level,
    make_patient,
    make_procedure,
    make_response,
    make_user,
)

DAY = datetime.date(2025, 3, 10)
LEAK = {"cement_leakage": True, "leakage_sites": ["paravertebral"], "leakage_detected_by": "ct"}


@pytest.fixture
def registry(site_a, site_b):
    """Site A: two osteoporotic patients (one with two levels, one leaking) and one
    pathologic (myeloma) who died; site B: one osteoporotic patient. Every procedure has a
    baseline response and its follow-ups; one complication at each site."""
    rows = {}
    osteo = make_patient(site_a, sex="male", date_of_birth=datetime.date(1940, 6, 1))
    make_contact(osteo, name="Ann Secret", email="ann.secret@example.org", phone="+4531123456")
    with transaction.atomic():  # a procedure and its levels commit together
        rows["osteo"] = procedure = make_procedure(osteo, date=DAY)
        make_level(procedure, level=TreatedLevel.Level.T12, **LEAK)
        make_level(procedure, level=TreatedLevel.Level.L1)
    make_response(procedure, "baseline", vas_pain=80, eq5d="33333", odi=[4] * 10)
    make_response(procedure, "month_3", vas_pain=30, eq5d="21111", odi=[1] * 10)
    make_complication(procedure, cirse_grade=3)

    second = make_patient(site_a, date_of_birth=datetime.date(1950, 1, 1))
    rows["second"] = procedure = make_procedure(second, "osteoporotic", date=DAY.replace(month=6))
    make_response(procedure, "baseline", vas_pain=70)

    myeloma = make_patient(
        site_a,
        primary_tumour="multiple_myeloma",
        date_of_death=DAY + datetime.timedelta(days=100),
        cause_of_death="disease_progression",
    )
    rows["myeloma"] = procedure = make_procedure(myeloma, "multiple_myeloma", date=DAY)
    make_response(procedure, "baseline", vas_pain=90)

    other = make_patient(site_b)
    make_contact(other)
    rows["other_site"] = procedure = make_procedure(other, "osteoporotic", date=DAY)
    make_response(procedure, "baseline", vas_pain=60)
    make_complication(procedure, cirse_grade=1)
    followups_ensure()
    return rows


@pytest.fixture
def auditor_a(site_a):
    return make_user("Auditor", site_a, username="auditor.a")


def token_client(user) -> APIClient:
    _instance, token = api_token_create(user=user)
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {token}")
    return client


@pytest.fixture
def api_a(auditor_a):
    """An API client with a token of site A's auditor."""
    return token_client(auditor_a)
