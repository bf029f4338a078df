"""Locking records by hand and in bulk (outcomes.records.locking, lock_records /
unlock_records): open queries block a lock, a reason is required both ways, the audit trail
names the data manager, and the import reports a locked record's rows one by one."""

from pathlib import Path

import pytest
from django.core.exceptions import PermissionDenied, ValidationError
from django.core.management import CommandError, call_command
from pghistory.models import Events

from api.imports import cases_import
from outcomes.quality.queries import dataquery_answer, dataquery_close, dataquery_raise
from outcomes.records.locking import record_lock, record_unlock
from registry.models import Patient, RecordLock, TreatedLevel
from tests.factories import make_patient, make_procedure, make_site, make_user

SAMPLE = Path(__file__).resolve().parents[2] / "docs" / "import-sample"
E = TreatedLevel.Etiology


@pytest.fixture
def data_manager(db):
    return make_user("Registry manager", username="dm.jensen")


def test_an_open_query_blocks_the_lock_until_it_is_closed(site_a, staff_a, data_manager):
    patient = make_patient(site_a)
    level = make_procedure(patient, E.OSTEOPOROTIC).levels.get()
    query = dataquery_raise(
        user=data_manager, record=level, field_name="cement_volume_ml", comment="9 mL?"
    )
    with pytest.raises(ValidationError) as refused:
        record_lock(patient=patient, user=data_manager, reason="verified")
    assert "not closed" in str(refused.value) and "cement_volume_ml" in str(refused.value)
    dataquery_answer(query=query, user=staff_a, answer="checked: 4.5 mL")
    with pytest.raises(ValidationError):  # answered is not yet resolved
        record_lock(patient=patient, user=data_manager, reason="verified")
    dataquery_close(query=query, user=data_manager)
    lock = record_lock(patient=patient, user=data_manager, reason="verified")
    assert lock.locked_by == data_manager
    assert RecordLock.objects.active().filter(patient=patient).count() == 1


def test_only_data_managers_lock_and_a_reason_is_required(site_a, staff_a, data_manager):
    patient = make_patient(site_a)
    with pytest.raises(PermissionDenied):
        record_lock(patient=patient, user=staff_a, reason="verified")
    with pytest.raises(ValidationError):
        record_lock(patient=patient, user=data_manager, reason="   ")
    lock = record_lock(patient=patient, user=data_manager, reason="verified")
    with pytest.raises(ValidationError):
        record_lock(patient=patient, user=data_manager, reason="again")
    with pytest.raises(ValidationError):
        record_unlock(lock=lock, user=data_manager, reason="")
    record_unlock(lock=lock, user=data_manager, reason="correction requested")
    events = Events.objects.tracks(lock).order_by("pgh_id")
    assert [e.pgh_label for e in events] == ["insert", "update"]
    assert [e.pgh_context["user"] for e in events] == [data_manager.pk, data_manager.pk]
    assert events[1].pgh_diff["unlock_reason"] == ["", "correction requested"]


def test_commands_lock_a_site_and_unlock_by_registry_id(site_a, site_b, data_manager, capsys):
    patients = [make_patient(site_a), make_patient(site_a)]
    other = make_patient(site_b)
    with pytest.raises(CommandError):
        call_command("lock_records", "--site", site_a.code, "--user", "dm.jensen")
    call_command(
        "lock_records", "--site", site_a.code, "--reason", "paper 2026", "--user", "dm.jensen"
    )
    assert "2 record(s) locked, 0 not." in capsys.readouterr().out
    assert set(RecordLock.objects.active().values_list("patient", flat=True)) == {
        p.pk for p in patients
    }
    # A second run reports them, one line each, and locks nothing twice.
    call_command(
        "lock_records",
        "--registry-id",
        patients[0].registry_id,
        "--registry-id",
        other.registry_id,
        "--reason",
        "paper 2026",
        "--user",
        "dm.jensen",
    )
    out = capsys.readouterr()
    assert "1 record(s) locked, 1 not." in out.out
    assert f"{patients[0].registry_id}: not locked: This record is already locked." in out.err
    call_command(
        "unlock_records",
        "--registry-id",
        patients[0].registry_id,
        "--reason",
        "late complication",
        "--user",
        "dm.jensen",
    )
    assert not RecordLock.objects.active().filter(patient=patients[0]).exists()
    Patient.objects.filter(pk=patients[0].pk).update(karnofsky=80)  # accepted again
    nurse = make_user("Site staff", site_a, username="nurse")
    with pytest.raises(CommandError, match="may not lock"):
        call_command("lock_records", "--site", "AAA", "--reason", "x", "--user", nurse.username)
    with pytest.raises(CommandError, match="No such registry id"):
        call_command(
            "lock_records", "--registry-id", "NOPE-1", "--reason", "x", "--user", "dm.jensen"
        )


def sample_files():
    return [(path.name, path.read_bytes()) for path in sorted(SAMPLE.glob("*.csv"))]


def test_the_import_reports_each_row_of_a_locked_record_and_accepts_it_after_unlock(
    data_manager,
):
    make_site("AAR")
    assert cases_import(files=sample_files()).ok
    patient = Patient.objects.get(registry_id="AAR-H0001")
    lock = record_lock(patient=patient, user=data_manager, reason="verified")
    levels = (
        (SAMPLE / "levels.csv")
        .read_text()
        .replace("T12,osteoporotic,true,2", "T12,osteoporotic,true,3")
    )
    changed = [(n, levels.encode() if n == "levels.csv" else c) for n, c in sample_files()]
    result = cases_import(files=changed)
    assert not result.ok
    [problem] = result.problems
    assert problem.table == "levels"
    assert "database rule record_locked" in problem.rule
    assert "AAR-H0001 is locked" in problem.rule
    assert TreatedLevel.objects.get(level=19).genant_grade == 2
    record_unlock(lock=lock, user=data_manager, reason="monitor found grade 3")
    assert cases_import(files=changed).ok
    assert TreatedLevel.objects.get(level=19).genant_grade == 3
