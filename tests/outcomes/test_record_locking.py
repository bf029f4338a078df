"""Locking records by hand and in bulk (outcomes.records.locking, lock_records /
unlock_records): open queries block a lock, a reason is required both ways, the audit trail
names the data manager, and the import reports a locked record's rows one by one. By data
freeze (lock_records/unlock_records --freeze, freeze_data --lock): exactly the patients with a
row in the freeze's files are locked, never one added after it."""

import datetime
from pathlib import Path

import pytest
from django.core.exceptions import PermissionDenied, ValidationError
from django.core.management import CommandError, call_command
from django.db import connection
from pghistory.models import Events

from api.freezes import freeze_registry_ids
from api.imports import cases_import
from api.models import DataFreeze
from outcomes.quality.queries import dataquery_answer, dataquery_close, dataquery_raise
from outcomes.records.locking import record_lock, record_unlock
from registry.models import Patient, RecordLock, TreatedLevel
from tests.factories import make_patient, make_procedure, make_response, make_site, make_user
from tests.registry.test_record_lock import refused

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


# --- by data freeze -----------------------------------------------------------------------------

AS_OF = "2025-12-31"


@pytest.fixture
def frozen(site_a, site_b, data_manager):
    """Two patients treated before the cut-off (sites A and B) and one after it; a freeze as
    of the cut-off; then a patient entered after the freeze with a procedure dated before
    the cut-off (a late entry the freeze never saw)."""
    rows = {}
    rows["a"] = make_patient(site_a)
    procedure = make_procedure(rows["a"], E.OSTEOPOROTIC, date=datetime.date(2025, 3, 10))
    make_response(procedure, "baseline", vas_pain=70)
    rows["b"] = make_patient(site_b)
    make_procedure(rows["b"], E.METASTASIS, date=datetime.date(2025, 6, 1))
    rows["after_cut_off"] = make_patient(site_a)
    make_procedure(rows["after_cut_off"], E.OSTEOPOROTIC, date=datetime.date(2026, 2, 1))
    call_command("freeze_data", "paper-2026", "--as-of", AS_OF, "--by", data_manager.username)
    rows["late_entry"] = make_patient(site_a)
    make_procedure(rows["late_entry"], E.OSTEOPOROTIC, date=datetime.date(2025, 5, 1))
    return rows


def active_locks() -> set[str]:
    return set(RecordLock.objects.active().values_list("patient__registry_id", flat=True))


def test_lock_by_freeze_locks_exactly_the_included_records_and_the_database_refuses(frozen, capsys):
    freeze = DataFreeze.objects.get(name="paper-2026")
    included = {frozen["a"].registry_id, frozen["b"].registry_id}
    assert set(freeze_registry_ids(freeze)) == included
    call_command(
        "lock_records", "--freeze", "paper-2026", "--reason", "paper 2026", "--user", "dm.jensen"
    )
    assert "2 record(s) locked, 0 not." in capsys.readouterr().out
    assert active_locks() == included
    # The adversary edits frozen data: through the ORM and as raw SQL, both refused.
    patient = frozen["a"]
    refused(lambda: Patient.objects.filter(pk=patient.pk).update(karnofsky=40))

    def raw():
        with connection.cursor() as cursor:
            cursor.execute(
                "UPDATE outcomes_questionnaireresponse SET vas_pain = 5 WHERE procedure_id IN "
                "(SELECT id FROM registry_procedure WHERE patient_id = %s)",
                [patient.pk],
            )

    assert patient.registry_id in refused(raw)
    assert patient.procedures.get().responses.get().vas_pain == 70
    # Neither the patient treated after the cut-off nor the late entry is locked.
    for name in ("after_cut_off", "late_entry"):
        Patient.objects.filter(pk=frozen[name].pk).update(karnofsky=70)
        assert Patient.objects.get(pk=frozen[name].pk).karnofsky == 70


def test_an_open_query_keeps_a_frozen_record_unlocked_and_is_listed(frozen, data_manager, capsys):
    dataquery_raise(
        user=data_manager, record=frozen["b"], field_name="karnofsky", comment="missing?"
    )
    call_command(
        "lock_records", "--freeze", "paper-2026", "--reason", "paper 2026", "--user", "dm.jensen"
    )
    out = capsys.readouterr()
    assert "1 record(s) locked, 1 not." in out.out
    assert f"{frozen['b'].registry_id}: not locked:" in out.err and "not closed" in out.err
    assert active_locks() == {frozen["a"].registry_id}


def test_unlock_by_freeze_needs_a_reason_and_lifts_only_the_included_locks(frozen, data_manager):
    call_command(
        "lock_records", "--freeze", "paper-2026", "--reason", "paper 2026", "--user", "dm.jensen"
    )
    record_lock(patient=frozen["late_entry"], user=data_manager, reason="verified by hand")
    with pytest.raises(CommandError):  # --reason is required
        call_command("unlock_records", "--freeze", "paper-2026", "--user", "dm.jensen")
    with pytest.raises(CommandError, match="must say why"):
        call_command(
            "unlock_records", "--freeze", "paper-2026", "--reason", " ", "--user", "dm.jensen"
        )
    assert len(active_locks()) == 3
    call_command(
        "unlock_records",
        "--freeze",
        "paper-2026",
        "--reason",
        "erratum: corrected dates",
        "--user",
        "dm.jensen",
    )
    assert active_locks() == {frozen["late_entry"].registry_id}
    lifted = RecordLock.objects.get(patient=frozen["a"])
    assert (lifted.unlock_reason, lifted.unlocked_by) == ("erratum: corrected dates", data_manager)
    event = Events.objects.tracks(lifted).order_by("pgh_id").last()
    assert event.pgh_context["user"] == data_manager.pk
    Patient.objects.filter(pk=frozen["a"].pk).update(karnofsky=60)  # accepted again


def test_an_unknown_freeze_is_a_clear_error_and_locks_nothing(frozen):
    with pytest.raises(CommandError, match=r"No data freeze named 'paper-2025' \(freezes: paper"):
        call_command(
            "lock_records",
            "--freeze",
            "paper-2025",
            "--site",
            frozen["a"].site.code,
            "--reason",
            "x",
            "--user",
            "dm.jensen",
        )
    with pytest.raises(CommandError, match="No data freeze named"):
        call_command("unlock_records", "--freeze", "nope", "--reason", "x", "--user", "dm.jensen")
    assert active_locks() == set()


def test_freeze_data_lock_locks_what_it_froze_and_lists_what_stayed_unlocked(
    site_a, site_b, data_manager, capsys
):
    verified = make_patient(site_a)
    make_procedure(verified, E.OSTEOPOROTIC, date=datetime.date(2025, 3, 10))
    queried = make_patient(site_b)
    make_procedure(queried, E.OSTEOPOROTIC, date=datetime.date(2025, 4, 10))
    dataquery_raise(user=data_manager, record=queried, field_name="sex", comment="check")
    later = make_patient(site_a)
    make_procedure(later, E.OSTEOPOROTIC, date=datetime.date(2026, 1, 5))
    capsys.readouterr()
    call_command(
        "freeze_data", "paper-2026", "--as-of", AS_OF, "--by", data_manager.username, "--lock"
    )
    out = capsys.readouterr()
    freeze = DataFreeze.objects.get(name="paper-2026")  # the freeze completed
    assert set(freeze_registry_ids(freeze)) == {verified.registry_id, queried.registry_id}
    assert active_locks() == {verified.registry_id}
    assert RecordLock.objects.get(patient=verified).reason == "data freeze paper-2026"
    assert RecordLock.objects.get(patient=verified).locked_by == data_manager
    assert f"{queried.registry_id}: not locked:" in out.err
    assert "1 record(s) locked, 1 not." in out.err
    refused(lambda: Patient.objects.filter(pk=verified.pk).update(karnofsky=50))
    # Without --lock nothing is locked; a custom reason needs --lock.
    call_command("freeze_data", "paper-2026b", "--as-of", AS_OF, "--by", data_manager.username)
    assert active_locks() == {verified.registry_id}
    with pytest.raises(CommandError, match="goes with --lock"):
        call_command(
            "freeze_data", "x", "--as-of", AS_OF, "--by", "dm.jensen", "--lock-reason", "why"
        )
    nurse = make_user("Site staff", site_a, username="nurse")
    with pytest.raises(CommandError, match="may not lock"):
        call_command("freeze_data", "y", "--as-of", AS_OF, "--by", nurse.username, "--lock")
    assert not DataFreeze.objects.filter(name__in=["x", "y"]).exists()
