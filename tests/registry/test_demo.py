import datetime
import re

import pytest
from django.core.management import call_command
from django.db.models import Count

from registry.demo import create_demo_cohort
from registry.models import Patient, Procedure, Site, TreatedLevel, next_registry_id


@pytest.mark.django_db
def test_demo_cohort_is_realistic_and_idempotent():
    today = datetime.date(2026, 6, 1)
    assert create_demo_cohort(patients=300, today=today) == 300
    counts = (Patient.objects.count(), Procedure.objects.count(), TreatedLevel.objects.count())
    assert create_demo_cohort(patients=300, today=today) == 0
    assert (
        Patient.objects.count(),
        Procedure.objects.count(),
        TreatedLevel.objects.count(),
    ) == counts

    assert set(Site.objects.values_list("code", flat=True)) == {"AAR", "ODE", "LDN"}
    cohorts = dict(Procedure.objects.values_list("cohort").annotate(n=Count("pk")))
    assert 15 <= cohorts["pathologic"] <= 45
    assert cohorts["osteoporotic"] >= 240
    per_procedure = Procedure.objects.annotate(n=Count("levels")).values_list("n", flat=True)
    assert set(per_procedure) <= {1, 2, 3, 4, 5} and max(per_procedure) >= 4
    leak_share = TreatedLevel.objects.filter(cement_leakage=True).count() / counts[2]
    assert 0.08 <= leak_share <= 0.22
    assert Patient.objects.filter(date_of_death__isnull=False).count() > 5
    ages = [
        (proc.date - proc.patient.date_of_birth).days / 365.25
        for proc in Procedure.objects.select_related("patient")
    ]
    assert 68 <= sum(ages) / len(ages) <= 76


@pytest.mark.django_db
def test_seed_demo_command_reports_what_it_did(capsys):
    call_command("seed_demo", patients=20, no_progress=True)
    call_command("seed_demo", patients=25, no_progress=True)
    out = capsys.readouterr().out
    assert "20 new patients (0 already there)" in out
    assert "5 new patients (20 already there)" in out
    assert Patient.objects.count() == 25


@pytest.mark.django_db
def test_demo_seeds_data_errors_the_quality_page_lists(client, capsys):
    from django.urls import reverse

    from outcomes.quality.models import QualityRun
    from tests.factories import make_user

    create_demo_cohort(patients=300)
    call_command("seed_demo_outcomes")
    assert "Demo data errors: 5 planted" in capsys.readouterr().out
    counts = {}
    for run in QualityRun.objects.all():
        for rule_id, count in run.counts.items():
            counts[rule_id] = counts.get(rule_id, 0) + count
    for rule_id in ("DQ03", "DQ04", "DQ05", "DQ08", "DQ10"):
        assert counts[rule_id] >= 1, rule_id
    call_command("seed_demo_outcomes")  # idempotent: nothing planted twice
    assert "Demo data errors: 0 planted" in capsys.readouterr().out

    client.force_login(make_user("Registry manager"))
    page = client.get(reverse("data_quality")).content.decode()
    assert page.count('class="quality-rule"') == 3 * 12  # three sites, twelve rules
    assert "AAR-" in page and "/admin/registry/complication/" in page


@pytest.mark.django_db
def test_demo_ids_have_the_generators_width_and_the_generator_continues_after_them():
    """The demo once made ``AAR-00001`` beside generated ``AAR-000001``: one sorted above the
    other. Every demo id now has the generator's format, and a patient registered after the
    demo gets the next number at its site, in the same width."""
    create_demo_cohort(patients=40, today=datetime.date(2026, 6, 1))
    ids = list(Patient.objects.values_list("registry_id", flat=True))
    assert len(ids) == 40
    assert all(re.fullmatch(r"(AAR|ODE|LDN)-\d{6}", registry_id) for registry_id in ids), ids
    aar = Site.objects.get(code="AAR")
    highest = max(int(i.split("-")[1]) for i in ids if i.startswith("AAR-"))
    generated = next_registry_id(aar.pk)
    assert generated == f"AAR-{highest + 1:06d}"
    assert max(i for i in [*ids, generated] if i.startswith("AAR-")) == generated


@pytest.mark.django_db
def test_a_demo_seeded_with_five_digit_ids_is_not_seeded_twice():
    """Ids already given out are never rewritten (they may be on paper): a demo seeded before
    the change keeps its ``AAR-00001`` ids, and seeding again adds no second copy."""
    today = datetime.date(2026, 6, 1)
    create_demo_cohort(patients=10, today=today)
    for patient in Patient.objects.all():
        code, number = patient.registry_id.split("-")
        Patient.objects.filter(pk=patient.pk).update(registry_id=f"{code}-{int(number):05d}")
    assert create_demo_cohort(patients=12, today=today) == 2
    assert Patient.objects.count() == 12
    assert Patient.objects.filter(registry_id__regex=r"^[A-Z]+-\d{5}$").count() == 10
