"""A synthetic multi-site cohort for demonstrations and benchmarks (never real patients).

The shape follows the published Danish series: about nine osteoporotic patients for every
pathologic one, mean age about 72, one to five levels per session, cement leakage in roughly
15 % of treated vertebrae, and deaths during follow-up (mostly in the pathologic cohort).
Each patient is generated from its own seeded random stream, so a second run produces the
same data and creates only what is missing.
"""

from __future__ import annotations

import datetime
import random
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from decimal import Decimal

from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.db import transaction

from registry.access import AUDITOR, REGISTRY_MANAGER, SITE_STAFF
from registry.models import (
    Complication,
    Patient,
    PatientContact,
    Procedure,
    Site,
    TreatedLevel,
    registry_id_counter_raise,
    registry_id_format,
)

DEMO_PASSWORD = "registry-demo"  # noqa: S105 - printed by the run command, demo users only
DEMO_SITES = [
    # code, name, time zone, EQ-5D version, value set, language, share of patients
    ("AAR", "Aarhus University Hospital", "Europe/Copenhagen", "5L", "DK-5L", "da", 0.45),
    ("ODE", "Odense University Hospital", "Europe/Copenhagen", "3L", "DK-3L", "da", 0.35),
    ("LDN", "St Luke's Spine Centre, London", "Europe/London", "5L", "EN-5L", "en", 0.20),
]
DEMO_USERS = [
    # username, group, site codes
    ("manager", REGISTRY_MANAGER, []),
    ("nurse.aar", SITE_STAFF, ["AAR"]),
    ("nurse.ode", SITE_STAFF, ["ODE"]),
    ("auditor.ldn", AUDITOR, ["LDN"]),
]
BATCH_SIZE = 500


@dataclass
class PatientPlan:
    patient: Patient
    contact: PatientContact
    procedure: Procedure
    levels: list[TreatedLevel] = field(default_factory=list)
    complications: list[Complication] = field(default_factory=list)


def ensure_demo_sites_and_users() -> dict[str, Site]:
    sites = {}
    for code, name, tz, version, value_set, _language, _share in DEMO_SITES:
        sites[code], _created = Site.objects.get_or_create(
            code=code,
            defaults={
                "name": name,
                "time_zone": tz,
                "contact_email": f"registry-{code.lower()}@example.org",
                "eq5d_version": version,
                "eq5d_value_set": value_set,
            },
        )
    User = get_user_model()
    for username, group_name, site_codes in DEMO_USERS:
        user, created = User.objects.get_or_create(
            username=username, defaults={"is_staff": True, "email": f"{username}@example.org"}
        )
        if created:
            user.set_password(DEMO_PASSWORD)
            user.save()
        user.groups.add(Group.objects.get(name=group_name))
        for code in site_codes:
            sites[code].members.add(user)
    return sites


def plan_patient(index: int, sites: dict[str, Site], today: datetime.date) -> PatientPlan:
    """Everything recorded about demo patient ``index``, from its own random stream."""
    rng = random.Random(f"registry-demo-{index}")
    site_code = rng.choices([s[0] for s in DEMO_SITES], weights=[s[6] for s in DEMO_SITES])[0]
    language = next(s[5] for s in DEMO_SITES if s[0] == site_code)
    site = sites[site_code]
    pathologic = rng.random() < 0.1

    age = round(rng.gauss(66 if pathologic else 73, 9 if pathologic else 8))
    age = max(40, min(age, 96))
    procedure_date = today - datetime.timedelta(days=rng.randint(0, 720))
    birth = procedure_date - datetime.timedelta(days=age * 365 + rng.randint(0, 364))
    consent = procedure_date - datetime.timedelta(days=rng.randint(0, 20))

    death = None
    cause = ""
    death_risk = 0.45 if pathologic else 0.05
    if rng.random() < death_risk:
        days = rng.randint(10, 500)
        candidate = procedure_date + datetime.timedelta(days=days)
        if candidate <= today:
            death = candidate
            cause = (
                Patient.CauseOfDeath.DISEASE_PROGRESSION
                if pathologic
                else rng.choice([Patient.CauseOfDeath.OTHER, Patient.CauseOfDeath.UNKNOWN])
            )
    withdrawn = None
    if death is None and rng.random() < 0.02:
        withdrawn = procedure_date + datetime.timedelta(days=rng.randint(20, 200))
        withdrawn = min(withdrawn, today)

    primary = ""
    confirmation = ""
    if pathologic:
        primary = rng.choices(
            [
                Patient.PrimaryTumour.MULTIPLE_MYELOMA,
                Patient.PrimaryTumour.BREAST,
                Patient.PrimaryTumour.LUNG,
                Patient.PrimaryTumour.PROSTATE,
                Patient.PrimaryTumour.KIDNEY,
                Patient.PrimaryTumour.LYMPHOMA,
            ],
            weights=[35, 25, 15, 12, 8, 5],
        )[0]
        confirmation = rng.choice(Patient.MalignancyConfirmation.values)

    # The generator's format (one width everywhere); the number is the demo index, so a second
    # run finds the same ids, and the site's counter is raised past them afterwards.
    registry_id = registry_id_format(site_code, index + 1)
    patient = Patient(
        registry_id=registry_id,
        site=site,
        sex=(
            Patient.Sex.FEMALE if rng.random() < (0.5 if pathologic else 0.8) else Patient.Sex.MALE
        ),
        date_of_birth=birth,
        consent_date=consent,
        consent_withdrawn_date=withdrawn,
        date_of_death=death,
        cause_of_death=cause,
        karnofsky=rng.choice([50, 60, 70, 80] if pathologic else [60, 70, 80, 90]),
        asa_class=rng.choice([2, 3, 3, 4] if pathologic else [1, 2, 2, 3]),
        primary_tumour=primary,
        malignancy_confirmation=confirmation,
        other_bone_metastases=(rng.random() < 0.6) if pathologic else None,
        visceral_metastases=(rng.random() < 0.3) if pathologic else None,
        prior_radiotherapy=(rng.random() < 0.5) if pathologic else None,
        prior_chemotherapy=(rng.random() < 0.6) if pathologic else None,
    )
    email = f"patient{index + 1}@example.org" if rng.random() < 0.85 else ""
    contact = PatientContact(
        patient=patient,
        name=f"Demo Patient {index + 1}",
        email=email,
        phone=f"+4531{100000 + index % 900000:06d}",
        # Those without email prefer texts (sent only when an SMS provider is configured).
        preferred_channel=PatientContact.Channel.EMAIL if email else PatientContact.Channel.SMS,
        preferred_language=language,
        consent_to_contact=rng.random() < 0.9,
    )
    technique = (
        Procedure.Technique.BALLOON_KYPHOPLASTY
        if rng.random() < 0.35
        else Procedure.Technique.VERTEBROPLASTY
    )
    absolute = []
    if rng.random() < 0.01:
        absolute = [Procedure.AbsoluteContraindication.ASYMPTOMATIC_FRACTURE]
    procedure = Procedure(
        patient=patient,
        date=procedure_date,
        technique=technique,
        adjunct=Procedure.Adjunct.RADIOFREQUENCY_ABLATION
        if pathologic and rng.random() < 0.2
        else Procedure.Adjunct.NONE,
        anaesthesia=rng.choice(Procedure.Anaesthesia.values),
        image_guidance=rng.choices(Procedure.ImageGuidance.values, weights=[80, 10, 10])[0],
        operator=rng.choice(["Dr Hansen", "Dr Jensen", "Dr Patel", "Dr Nielsen"]),
        indication=Procedure.Indication.PAINFUL_FRACTURE,
        mri_stir_oedema=rng.random() < 0.9,
        biopsy_taken=pathologic or rng.random() < 0.1,
        fluoroscopy_time_s=rng.randint(60, 900),
        dose_area_product=Decimal(rng.randint(200, 6000)) / 100,
        absolute_contraindications=absolute,
        length_of_stay_days=rng.choice([0, 1, 1, 2, 3]),
    )
    if procedure.biopsy_taken:
        procedure.biopsy_result = (
            Procedure.BiopsyResult.MALIGNANT if pathologic else Procedure.BiopsyResult.BENIGN
        )

    plan = PatientPlan(patient=patient, contact=contact, procedure=procedure)
    count = rng.choices([1, 2, 3, 4, 5], weights=[45, 30, 15, 7, 3])[0]
    first = rng.randint(TreatedLevel.Level.T4, TreatedLevel.Level.L5 - count + 1)
    malignant = rng.choices(
        [
            TreatedLevel.Etiology.METASTASIS,
            TreatedLevel.Etiology.MULTIPLE_MYELOMA,
            TreatedLevel.Etiology.LYMPHOMA_LEUKAEMIA,
        ],
        weights=[55, 35, 10],
    )[0]
    if primary == Patient.PrimaryTumour.MULTIPLE_MYELOMA:
        malignant = TreatedLevel.Etiology.MULTIPLE_MYELOMA
    for offset in range(count):
        etiology = TreatedLevel.Etiology.OSTEOPOROTIC
        if pathologic and (offset == 0 or rng.random() < 0.8):
            etiology = malignant
        leak = rng.random() < 0.15
        plan.levels.append(
            TreatedLevel(
                procedure=procedure,
                level=first + offset,
                etiology=etiology,
                fracture=True,
                genant_grade=rng.choice([1, 2, 2, 3]),
                posterior_wall_defect=rng.random() < (0.3 if pathologic else 0.08),
                pedicle_involvement=pathologic and rng.random() < 0.2,
                epidural_extension=pathologic and rng.random() < 0.1,
                approach=rng.choice(TreatedLevel.Approach.values[:2]),
                cement_type=TreatedLevel.CementType.PMMA,
                cement_volume_ml=Decimal(rng.randint(15, 60)) / 10,
                cement_leakage=leak,
                leakage_sites=(
                    rng.sample(
                        [
                            TreatedLevel.LeakageSite.SEGMENTAL_VEIN,
                            TreatedLevel.LeakageSite.INTRADISCAL,
                            TreatedLevel.LeakageSite.PARAVERTEBRAL,
                            TreatedLevel.LeakageSite.EPIDURAL,
                        ],
                        k=rng.choice([1, 1, 2]),
                    )
                    if leak
                    else []
                ),
                leakage_symptomatic=leak and rng.random() < 0.05,
                leakage_detected_by=(
                    rng.choice(TreatedLevel.LeakageDetection.values) if leak else ""
                ),
            )
        )
    complication_date = procedure_date + datetime.timedelta(days=rng.randint(0, 60))
    if rng.random() < 0.05 and complication_date <= (death or today):
        plan.complications.append(
            Complication(
                patient=patient,
                procedure=procedure,
                date=complication_date,
                type=rng.choice(
                    [
                        Complication.Type.ADJACENT_FRACTURE,
                        Complication.Type.RADICULOPATHY,
                        Complication.Type.HAEMATOMA,
                        Complication.Type.RIB_FRACTURE,
                    ]
                ),
                cirse_grade=rng.choice([1, 2, 3]),
                relation=rng.choice(
                    [Complication.Relation.PROBABLE, Complication.Relation.POSSIBLE]
                ),
                outcome=Complication.Outcome.RESOLVED,
            )
        )
    return plan


def chunked(items: list, size: int) -> Iterator[list]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def create_demo_cohort(
    *,
    patients: int,
    today: datetime.date | None = None,
    progress: Callable[[int], None] | None = None,
) -> int:
    """Create the demo sites, users and ``patients`` patients; return how many were new.

    Idempotent: patients whose registry id exists already are left alone.
    """
    today = today or datetime.date.today()
    sites = ensure_demo_sites_and_users()
    plans = [plan_patient(index, sites, today) for index in range(patients)]
    # Demos seeded before ids had one width hold ``AAR-00001``: those patients exist too.
    legacy = {
        f"{plan.patient.registry_id.split('-')[0]}-{index + 1:05d}": plan.patient.registry_id
        for index, plan in enumerate(plans)
    }
    taken = Patient.objects.filter(
        registry_id__in=[plan.patient.registry_id for plan in plans] + list(legacy)
    ).values_list("registry_id", flat=True)
    existing = {legacy.get(registry_id, registry_id) for registry_id in taken}
    new_plans = [plan for plan in plans if plan.patient.registry_id not in existing]
    if progress and existing:
        progress(len(existing))
    for batch in chunked(new_plans, BATCH_SIZE):
        with transaction.atomic():
            Patient.objects.bulk_create([plan.patient for plan in batch])
            for plan in batch:
                # bulk_create sets the primary keys on PostgreSQL; re-point the children.
                plan.contact.patient = plan.patient
                plan.procedure.patient = plan.patient
            PatientContact.objects.bulk_create([plan.contact for plan in batch])
            Procedure.objects.bulk_create([plan.procedure for plan in batch])
            levels = []
            for plan in batch:
                for level in plan.levels:
                    level.procedure = plan.procedure
                    levels.append(level)
            TreatedLevel.objects.bulk_create(levels)
            complications = []
            for plan in batch:
                for complication in plan.complications:
                    complication.patient = plan.patient
                    complication.procedure = plan.procedure
                    complications.append(complication)
            Complication.objects.bulk_create(complications)
        if progress:
            progress(len(batch))
    for site in sites.values():
        numbers = [int(p.patient.registry_id.rsplit("-", 1)[1]) for p in plans
                   if p.patient.site_id == site.pk]  # fmt: skip
        if numbers:
            registry_id_counter_raise(site.pk, max(numbers))
    return len(new_plans)
