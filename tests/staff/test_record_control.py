"""Locking and signing from the patient record: the data manager's lock and unlock with
reasons, the dashboard's locked records, the investigator's signature after re-entering the
password (and the authenticator code), voided visibly on the page and in the export by a
later change."""

import csv
import io

import pytest
from django.core.exceptions import ValidationError
from django.urls import reverse
from django_otp.oath import totp
from django_otp.plugins.otp_totp.models import TOTPDevice
from pghistory.models import Events

from outcomes.quality.queries import dataquery_raise
from outcomes.records.signing import record_hash, record_sign
from registry.models import RecordLock, Signature, TreatedLevel
from tests.api.conftest import token_client
from tests.factories import make_patient, make_procedure, make_response, make_user

PASSWORD = "pw-for-tests-only"


@pytest.fixture
def record(site_a):
    patient = make_patient(site_a)
    procedure = make_procedure(patient, "osteoporotic")
    make_response(procedure, "baseline", vas_pain=70)
    return patient


@pytest.fixture
def data_manager(db):
    return make_user("Registry manager", username="dm.jensen")


@pytest.fixture
def investigator(site_a):
    return make_user("Site lead", site_a, username="dr.berg", first_name="Ida", last_name="Berg")


def test_data_manager_locks_and_unlocks_from_the_record_with_reasons(client, record, data_manager):
    client.force_login(data_manager)
    lock_url = reverse("record_lock", args=[record.registry_id])
    empty = client.post(lock_url, {"reason": "  "})
    assert empty.status_code == 200 and not RecordLock.objects.exists()
    response = client.post(lock_url, {"reason": "source-verified 2026-03"})
    assert response.status_code == 302
    lock = RecordLock.objects.active().get(patient=record)
    page = client.get(reverse("staff_record", args=[record.registry_id])).content.decode()
    assert "Record locked" in page and "source-verified 2026-03" in page
    board = client.get(reverse("staff_dashboard") + "?locked=yes").context["table"]
    assert [(row["registry_id"], row["locked"]) for row in board] == [(record.registry_id, True)]
    assert client.get(reverse("staff_dashboard") + "?locked=no").context["table"] == []

    unlock_url = reverse("record_unlock", args=[record.registry_id, lock.pk])
    assert client.post(unlock_url, {"unlock_reason": ""}).status_code == 200
    assert client.post(unlock_url, {"unlock_reason": "late complication"}).status_code == 302
    lock.refresh_from_db()
    assert lock.unlock_reason == "late complication" and lock.unlocked_by == data_manager
    history = client.get(reverse("admin:registry_patient_history", args=[record.pk]))
    assert "late complication" in history.content.decode()


def test_an_open_query_blocks_the_lock_on_the_page(client, record, data_manager):
    dataquery_raise(user=data_manager, record=record, field_name="karnofsky", comment="60 or 70?")
    client.force_login(data_manager)
    page = client.post(reverse("record_lock", args=[record.registry_id]), {"reason": "verified"})
    assert page.status_code == 200
    assert "resolve them before locking" in page.content.decode()
    assert not RecordLock.objects.exists()


def test_site_staff_may_neither_lock_nor_sign(client_a, record):
    assert client_a.get(reverse("record_lock", args=[record.registry_id])).status_code == 403
    assert client_a.get(reverse("record_sign", args=[record.registry_id])).status_code == 403


def export_patients(user) -> dict[str, str]:
    response = token_client(user).get("/api/v1/exports/patients.csv")
    assert response.status_code == 200
    [row] = csv.DictReader(io.StringIO(b"".join(response.streaming_content).decode()))
    return row


def test_a_signature_needs_the_password_and_is_voided_by_a_later_change(
    client, record, investigator
):
    client.force_login(investigator)
    url = reverse("record_sign", args=[record.registry_id])
    meaning = Signature.Meaning.COMPLETE_AND_ACCURATE
    wrong = client.post(url, {"meaning": meaning, "password": "guess"})
    assert wrong.status_code == 200 and "password is not right" in wrong.content.decode()
    assert not Signature.objects.exists()

    assert client.post(url, {"meaning": meaning, "password": PASSWORD}).status_code == 302
    signature = Signature.objects.get(patient=record)
    assert (signature.signer, signature.signer_name, signature.meaning) == (
        investigator,
        "Ida Berg",
        meaning,
    )
    assert signature.data_hash == record_hash(record)
    page = client.get(reverse("staff_record", args=[record.registry_id])).content.decode()
    assert signature.data_hash in page and "VOID" not in page
    exported = export_patients(investigator)
    assert exported["signature_status"] == "valid"
    assert exported["signed_by"] == f"S{investigator.pk:05d}"
    assert exported["signature_meaning"] == "complete_accurate"

    TreatedLevel.objects.filter(procedure__patient=record).update(cement_volume_ml=6)

    signature.refresh_from_db()
    assert signature.voided_at is not None
    page = client.get(reverse("staff_record", args=[record.registry_id])).content.decode()
    assert "VOID" in page and "a new signature is needed" in page
    assert export_patients(investigator)["signature_status"] == "void"
    labels = [e.pgh_label for e in Events.objects.tracks(signature).order_by("pgh_id")]
    assert labels == ["insert", "update"]


def test_a_signature_after_a_change_behind_the_triggers_shows_void(record, investigator):
    signature = record_sign(
        patient=record, user=investigator, password=PASSWORD, meaning="reviewed"
    )
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("SET LOCAL session_replication_role = replica")
        cursor.execute(
            "UPDATE outcomes_questionnaireresponse SET vas_pain = 10 WHERE procedure_id IN "
            "(SELECT id FROM registry_procedure WHERE patient_id = %s)",
            [record.pk],
        )
        cursor.execute("SET LOCAL session_replication_role = origin")
    from outcomes.records.signing import signatures_of

    [state] = signatures_of(record)
    assert state.signature == signature and not state.valid
    assert "differ" in state.why_void


def test_an_investigator_with_an_authenticator_gives_its_code_too(record, investigator):
    device = TOTPDevice.objects.create(user=investigator, name="phone", confirmed=True)
    with pytest.raises(ValidationError) as refused:
        record_sign(patient=record, user=investigator, password=PASSWORD, meaning="reviewed")
    assert "otp_token" in refused.value.error_dict
    code = totp(device.bin_key, step=device.step, t0=device.t0, digits=device.digits)
    signature = record_sign(
        patient=record,
        user=investigator,
        password=PASSWORD,
        otp_token=f"{code:0{device.digits}d}",
        meaning="reviewed",
    )
    assert signature.is_valid


def test_a_follow_up_signature_covers_only_that_timepoint(record, investigator):
    procedure = record.procedures.get()
    signature = record_sign(
        patient=record,
        user=investigator,
        password=PASSWORD,
        meaning="reviewed",
        procedure=procedure,
        timepoint="baseline",
    )
    procedure.levels.update(cement_volume_ml=7)
    signature.refresh_from_db()
    assert signature.is_valid
    procedure.responses.update(vas_pain=20)
    signature.refresh_from_db()
    assert not signature.is_valid
