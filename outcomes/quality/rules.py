"""Data-quality rules as data (after REDCap's data-quality rules).

Each rule has an id, a severity, its message in English and Danish, and the query that finds
the offending records at a set of sites. Rules find what the database cannot refuse: records
that are possible but incomplete or inconsistent across forms. Add a rule by adding a ``Rule``
to ``RULES`` with a test of a record that breaks it and one that does not
(tests/outcomes/test_quality_rules.py).
"""

from __future__ import annotations

import datetime
from collections.abc import Callable
from dataclasses import dataclass

from django.contrib.contenttypes.models import ContentType
from django.db.models import Exists, F, OuterRef, Q, QuerySet

from outcomes.models import FollowUp, QuestionnaireResponse, Timepoint
from outcomes.quality.models import WarningAcknowledgement
from registry.duplicates import patients_with_likely_duplicates
from registry.models import Complication, Patient, Procedure, TreatedLevel

ERROR = "error"
WARNING = "warning"
INFO = "info"
SEVERITIES = (ERROR, WARNING, INFO)

# Complications that happen at a treated vertebra (cement leaking from it, a fracture next to
# it): the level is needed to report them per vertebra.
TYPES_NEEDING_LEVEL = (
    Complication.Type.SYMPTOMATIC_LEAKAGE,
    Complication.Type.PULMONARY_EMBOLISM,
    Complication.Type.ADJACENT_FRACTURE,
)
# The 3-month radiograph is due by the end of the 3-month window (day 120).
RADIOGRAPH_DUE_DAYS = 120


@dataclass(frozen=True)
class Rule:
    id: str
    severity: str
    message_en: str
    message_da: str
    # Offending records at ``sites`` as of ``today``.
    query: Callable[[QuerySet, datetime.date], QuerySet]

    def message(self, language: str) -> str:
        return self.message_da if language == "da" else self.message_en


def _likely_duplicate(sites, today):
    return patients_with_likely_duplicates(Patient.objects.filter(site__in=sites))


def _missing_baseline(sites, today):
    baseline = QuestionnaireResponse.objects.filter(
        procedure=OuterRef("pk"), timepoint=Timepoint.BASELINE, answered_on__lte=OuterRef("date")
    )
    return (
        Procedure.objects.filter(patient__site__in=sites)
        .exclude(Exists(baseline))
        .select_related("patient")
    )


def _leakage_without_radiograph(sites, today):
    return (
        TreatedLevel.objects.filter(
            procedure__patient__site__in=sites,
            cement_leakage=True,
            procedure__date__lte=today - datetime.timedelta(days=RADIOGRAPH_DUE_DAYS),
        )
        .exclude(
            leakage_detected_by__in=[
                TreatedLevel.LeakageDetection.RADIOGRAPH_3M,
                TreatedLevel.LeakageDetection.CT,
            ]
        )
        .select_related("procedure__patient")
    )


def _death_with_open_followups(sites, today):
    return (
        FollowUp.objects.pending()
        .filter(
            procedure__patient__site__in=sites,
            procedure__patient__date_of_death__isnull=False,
            due_date__gt=F("procedure__patient__date_of_death"),
        )
        .select_related("procedure__patient")
    )


def _complication_without_level(sites, today):
    return Complication.objects.filter(
        patient__site__in=sites, type__in=TYPES_NEEDING_LEVEL, treated_level__isnull=True
    ).select_related("patient")


def _eq5d_without_value_set(sites, today):
    return (
        QuestionnaireResponse.objects.filter(procedure__patient__site__in=sites)
        .exclude(eq5d_version="")
        .filter(Q(eq5d_value_set="") | Q(eq5d_index__isnull=True))
        .select_related("procedure__patient")
    )


def _response_outside_window(sites, today):
    followup = FollowUp.objects.filter(
        procedure=OuterRef("procedure"), timepoint=OuterRef("timepoint")
    )
    saved_anyway = WarningAcknowledgement.objects.filter(
        content_type=ContentType.objects.get_for_model(QuestionnaireResponse),
        object_id=OuterRef("pk"),
        codes__contains=["response_far_outside_window"],
    )
    return (
        QuestionnaireResponse.objects.filter(procedure__patient__site__in=sites)
        .filter(
            Exists(followup.filter(window_start__gt=OuterRef("answered_on")))
            | Exists(followup.filter(window_end__lt=OuterRef("answered_on")))
        )
        .exclude(Exists(saved_anyway))
        .select_related("procedure__patient")
    )


def _followup_answers_before_procedure(sites, today):
    return (
        QuestionnaireResponse.objects.filter(
            procedure__patient__site__in=sites, answered_on__lt=F("procedure__date")
        )
        .exclude(timepoint=Timepoint.BASELINE)
        .select_related("procedure__patient")
    )


def _pathologic_without_primary(sites, today):
    malignant = TreatedLevel.objects.filter(
        procedure__patient=OuterRef("pk"), etiology__in=TreatedLevel.MALIGNANT_ETIOLOGIES
    )
    return Patient.objects.filter(site__in=sites, primary_tumour="").filter(Exists(malignant))


def _procedure_without_level(sites, today):
    return (
        Procedure.objects.filter(patient__site__in=sites)
        .exclude(Exists(TreatedLevel.objects.filter(procedure=OuterRef("pk"))))
        .select_related("patient")
    )


def _unknown_etiology(sites, today):
    # Cohort "unknown" (design.md §7): a level of unknown etiology and none malignant. A
    # pathologic procedure with an unknown level is compared all the same, so not listed.
    return Procedure.objects.filter(patient__site__in=sites).unknown().select_related("patient")


def _death_without_cause(sites, today):
    return Patient.objects.filter(site__in=sites, date_of_death__isnull=False, cause_of_death="")


RULES = (
    Rule(
        "DQ01",
        WARNING,
        "No baseline questionnaire answered on or before the procedure.",
        "Intet baseline-spørgeskema besvaret på eller før indgrebet.",
        _missing_baseline,
    ),
    Rule(
        "DQ02",
        INFO,
        "Cement leakage recorded, but not confirmed on the 3-month radiograph (or CT).",
        "Cementlækage registreret, men ikke bekræftet på 3-måneders røntgen (eller CT).",
        _leakage_without_radiograph,
    ),
    Rule(
        "DQ03",
        ERROR,
        "Death recorded, but a follow-up due after the death is still open.",
        "Død registreret, men en opfølgning med frist efter dødsfaldet er stadig åben.",
        _death_with_open_followups,
    ),
    Rule(
        "DQ04",
        WARNING,
        "Complication of a type that needs its treated level, recorded without one.",
        "Komplikation af en type, der kræver det behandlede niveau, registreret uden niveau.",
        _complication_without_level,
    ),
    Rule(
        "DQ05",
        ERROR,
        "EQ-5D answered, but no value set (no index computed).",
        "EQ-5D besvaret, men uden værdisæt (intet indeks beregnet).",
        _eq5d_without_value_set,
    ),
    Rule(
        "DQ06",
        WARNING,
        "Questionnaire answered outside its window (and not saved anyway with a reason).",
        "Spørgeskema besvaret uden for sit vindue (og ikke gemt alligevel med en begrundelse).",
        _response_outside_window,
    ),
    Rule(
        "DQ07",
        ERROR,
        "Follow-up answers dated before the procedure (was the procedure date changed?).",
        "Opfølgningssvar dateret før indgrebet (er indgrebets dato ændret?).",
        _followup_answers_before_procedure,
    ),
    Rule(
        "DQ08",
        WARNING,
        "Malignant level treated, but no primary tumour recorded for the patient.",
        "Malignt niveau behandlet, men ingen primærtumor registreret for patienten.",
        _pathologic_without_primary,
    ),
    Rule(
        "DQ09",
        ERROR,
        "Procedure without any treated level.",
        "Indgreb uden behandlede niveauer.",
        _procedure_without_level,
    ),
    Rule(
        "DQ10",
        INFO,
        "Date of death recorded without a cause of death.",
        "Dødsdato registreret uden dødsårsag.",
        _death_without_cause,
    ),
    Rule(
        "DQ11",
        WARNING,
        "Likely duplicate: another patient has the same date of birth and a similar name, or "
        "the same phone or email.",
        "Mulig dublet: en anden patient har samme fødselsdato og et lignende navn eller samme "
        "telefon eller e-mail.",
        _likely_duplicate,
    ),
    Rule(
        "DQ12",
        WARNING,
        "Treated level of unknown etiology: the procedure is left out of the cohort "
        "comparison until the etiology is recorded.",
        "Behandlet niveau med ukendt ætiologi: indgrebet indgår ikke i sammenligningen af "
        "kohorter, før ætiologien er registreret.",
        _unknown_etiology,
    ),
)
RULES_BY_ID = {rule.id: rule for rule in RULES}
