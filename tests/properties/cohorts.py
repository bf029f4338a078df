"""Random small cohorts for the property-based tests of every export and report
(``tests/properties/test_exports_property.py``; the long run in ``tests/benchmarks``).

A cohort is drawn as plain data (``CohortPlan``), then written through the factories, so a
failing example prints as a readable plan. The shapes that broke exports before are drawn on
purpose: columns empty in every row, deaths and withdrawals only in the last patients (the
first rows of those columns empty), one site, no pathologic patient, text in any script, and
dates at the edges the database allows (1 January 1900, 29 February, the site's yesterday).
"""

from __future__ import annotations

import datetime
from dataclasses import dataclass

from django.db import transaction
from hypothesis import strategies as st

from registry.models import Patient, Procedure, TreatedLevel
from tests.factories import make_complication, make_level, make_patient, make_response

EARLIEST = datetime.date(1900, 1, 1)
# The site's yesterday wherever the machine's clock and the site's zone stand.
LATEST = datetime.date.today() - datetime.timedelta(days=2)
E = TreatedLevel.Etiology
NON_PATHOLOGIC = [E.OSTEOPOROTIC, E.HAEMANGIOMA, E.TRAUMATIC, E.OTHER]

# Free text in any script, without NUL (PostgreSQL text cannot hold it), surrogates, or digits
# (a run of digits may look like a CPR number, which every text column refuses).
TEXT = st.text(
    alphabet=st.characters(
        blacklist_categories=("Cs", "Cc", "Nd", "No", "Nl"), blacklist_characters="\x00"
    ),
    max_size=12,
)


def _dates(low: datetime.date, high: datetime.date):
    edges = [d for d in (low, high, datetime.date(2024, 2, 29)) if low <= d <= high]
    return st.one_of(st.sampled_from(edges), st.dates(min_value=low, max_value=high))


@dataclass(frozen=True)
class LevelPlan:
    etiology: str


@dataclass(frozen=True)
class ProcedurePlan:
    date: datetime.date
    levels: tuple[LevelPlan, ...]
    notes: str
    baseline: bool  # a baseline response with answers
    complication: bool


@dataclass(frozen=True)
class PatientPlan:
    site: int
    born: datetime.date
    consent: datetime.date
    procedures: tuple[ProcedurePlan, ...]
    died: datetime.date | None
    withdrew: datetime.date | None
    karnofsky: int | None


@dataclass(frozen=True)
class CohortPlan:
    sites: int
    patients: tuple[PatientPlan, ...]
    # Patients registered first, alive, consenting, without procedures: more than a hundred
    # of them leave the first hundred rows of every date column but two empty (the rows
    # pyreadstat used to guess a column's type from).
    padding: int = 0

    @property
    def patient_count(self) -> int:
        return self.padding + len(self.patients)

    @property
    def procedures(self) -> int:
        return sum(len(p.procedures) for p in self.patients)

    @property
    def levels(self) -> int:
        return sum(len(q.levels) for p in self.patients for q in p.procedures)


@st.composite
def procedures(draw, born: datetime.date, etiologies) -> ProcedurePlan:
    day = draw(_dates(born, LATEST))
    levels = draw(st.lists(st.sampled_from(etiologies), min_size=1, max_size=3))
    return ProcedurePlan(
        date=day,
        levels=tuple(LevelPlan(e) for e in levels),
        notes=draw(TEXT),
        baseline=draw(st.booleans()),
        complication=draw(st.booleans()),
    )


@st.composite
def patients(draw, site_count: int, etiologies, may_end: bool) -> PatientPlan:
    born = draw(_dates(EARLIEST, LATEST))
    consent = draw(_dates(born, LATEST))
    planned = tuple(
        draw(st.lists(procedures(born, etiologies), max_size=2, unique_by=lambda p: p.date))
    )
    last = max([p.date for p in planned], default=born)
    died = draw(st.one_of(st.none(), _dates(last, LATEST))) if may_end else None
    withdrew = draw(st.one_of(st.none(), _dates(consent, LATEST))) if may_end else None
    return PatientPlan(
        site=draw(st.integers(0, site_count - 1)),
        born=born,
        consent=consent,
        procedures=planned,
        died=died,
        withdrew=withdrew,
        karnofsky=draw(st.one_of(st.none(), st.sampled_from([0, 50, 100]))),
    )


@st.composite
def cohorts(draw, max_patients: int = 6) -> CohortPlan:
    site_count = draw(st.integers(1, 2))
    etiologies = draw(st.sampled_from([list(E.values), NON_PATHOLOGIC]))
    count = draw(st.integers(0, max_patients))
    # Deaths and withdrawals in the last patients only, or anywhere.
    ending = draw(st.integers(0, count))
    plans = tuple(draw(patients(site_count, etiologies, may_end=n >= ending)) for n in range(count))
    padding = draw(st.sampled_from([0, 0, 0, 101]))
    return CohortPlan(sites=site_count, patients=plans, padding=padding)


def late_deaths_after_empty_rows() -> CohortPlan:
    """The shape of issue 25: a hundred and one patients without a death or a withdrawal,
    then one who withdrew and died."""
    day = datetime.date(2024, 2, 29)
    last = PatientPlan(
        site=0,
        born=EARLIEST,
        consent=day,
        procedures=(ProcedurePlan(day, (LevelPlan(E.METASTASIS),), "", True, True),),
        died=LATEST,
        withdrew=LATEST,
        karnofsky=None,
    )
    return CohortPlan(sites=1, patients=(last,), padding=101)


def build(plan: CohortPlan, sites: list) -> None:
    """Write ``plan`` through the factories (each procedure with its levels in one
    transaction, as the database requires)."""
    Patient.objects.bulk_create(
        Patient(
            site=sites[0],
            registry_id=f"{sites[0].code}-A{number:04d}",
            sex=Patient.Sex.MALE,
            date_of_birth=EARLIEST,
            consent_date=EARLIEST,
        )
        for number in range(plan.padding)
    )
    for number, patient_plan in enumerate(plan.patients, start=1):
        site = sites[patient_plan.site]
        patient = make_patient(
            site,
            registry_id=f"{site.code}-P{number:04d}",
            date_of_birth=patient_plan.born,
            consent_date=patient_plan.consent,
            karnofsky=patient_plan.karnofsky,
        )
        for procedure_plan in patient_plan.procedures:
            with transaction.atomic():
                procedure = Procedure.objects.create(
                    patient=patient,
                    date=procedure_plan.date,
                    technique=Procedure.Technique.VERTEBROPLASTY,
                    anaesthesia=Procedure.Anaesthesia.LOCAL,
                    image_guidance=Procedure.ImageGuidance.FLUOROSCOPY,
                    indication=Procedure.Indication.PAINFUL_FRACTURE,
                    notes=procedure_plan.notes,
                )
                for offset, level in enumerate(procedure_plan.levels):
                    make_level(
                        procedure, level=TreatedLevel.Level.T12 + offset, etiology=level.etiology
                    )
            if procedure_plan.baseline:
                make_response(procedure, eq5d="12345", odi=[1, 2, 3, 0, 1, 2, 3, 4, 5, None])
            if procedure_plan.complication:
                make_complication(procedure)
        changes = {}
        if patient_plan.died:
            changes.update(date_of_death=patient_plan.died, cause_of_death="unknown")
        if patient_plan.withdrew:
            changes.update(consent_withdrawn_date=patient_plan.withdrew)
        if changes:
            Patient.objects.filter(pk=patient.pk).update(**changes)
