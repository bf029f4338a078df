"""Pseudonymised representations: registry ids, never names, contact details, dates of birth
or free text (notes and descriptions may name people). Every field is listed."""

from __future__ import annotations

from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from outcomes.models import FollowUp, QuestionnaireResponse
from outcomes.quality.models import DataQuery
from registry.access import staff_code_of
from registry.models import Cohort, Complication, Patient, Procedure, TreatedLevel

COHORT_CHOICES = Cohort.choices
TIMESTAMPS = ["updated_at"]


@extend_schema_field({"type": "string", "nullable": True, "pattern": "^S[0-9]{5,}$"})
class StaffCodeField(serializers.Field):
    """A staff user as their pseudonymous code (``S00042``), never a username: the one
    field for staff in every API response. ``source`` names the user's id (``raised_by_id``)
    so no user row is loaded."""

    def __init__(self, **kwargs):
        kwargs.setdefault("read_only", True)
        kwargs.setdefault(
            "help_text",
            "Pseudonymous code of the staff user (S and the user's id, e.g. S00042; never a "
            "name); null when there is none.",
        )
        super().__init__(**kwargs)

    def to_representation(self, value) -> str | None:
        return staff_code_of(value)


class PatientSerializer(serializers.ModelSerializer):
    site = serializers.CharField(source="site.code")
    age_at_index = serializers.IntegerField(
        help_text="Completed years at the index (first) procedure."
    )
    index_procedure = serializers.IntegerField(source="index_procedure_id", allow_null=True)
    index_date = serializers.DateField(allow_null=True)
    index_cohort = serializers.ChoiceField(choices=COHORT_CHOICES, allow_null=True)
    vital_status = serializers.SerializerMethodField()

    class Meta:
        model = Patient
        fields = [
            "registry_id",
            "site",
            "sex",
            "age_at_index",
            "index_procedure",
            "index_date",
            "index_cohort",
            "vital_status",
            "date_of_death",
            "cause_of_death",
            "consent_withdrawn_date",
            "karnofsky",
            "asa_class",
            *Patient.ONCOLOGIC_HISTORY_FIELDS,
            *TIMESTAMPS,
        ]

    def get_vital_status(self, patient) -> str:
        return "deceased" if patient.date_of_death else "alive"


class TreatedLevelSerializer(serializers.ModelSerializer):
    level = serializers.CharField(source="get_level_display", help_text="C2 … S1")

    class Meta:
        model = TreatedLevel
        fields = [
            "id",
            "level",
            "etiology",
            "fracture",
            "genant_grade",
            "posterior_wall_defect",
            "pedicle_involvement",
            "epidural_extension",
            "approach",
            "cement_type",
            "cement_volume_ml",
            "cement_leakage",
            "leakage_sites",
            "leakage_symptomatic",
            "leakage_detected_by",
            *TIMESTAMPS,
        ]


class OfProcedure(serializers.Serializer):
    """The procedure, patient and site a row belongs to."""

    procedure = serializers.IntegerField(source="procedure_id")
    patient = serializers.CharField(source="procedure.patient.registry_id")
    site = serializers.CharField(source="procedure.patient.site.code")
    cohort = serializers.ChoiceField(choices=COHORT_CHOICES)


class TreatedLevelListSerializer(OfProcedure, TreatedLevelSerializer):
    procedure_date = serializers.DateField(source="procedure.date")

    class Meta(TreatedLevelSerializer.Meta):
        fields = [
            "id",
            "procedure",
            "patient",
            "site",
            "procedure_date",
            "cohort",
            *TreatedLevelSerializer.Meta.fields[1:],
        ]


class ProcedureSerializer(serializers.ModelSerializer):
    patient = serializers.CharField(source="patient.registry_id")
    site = serializers.CharField(source="patient.site.code")
    cohort = serializers.ChoiceField(choices=COHORT_CHOICES)
    age_at_procedure = serializers.IntegerField(help_text="Completed years on the day.")
    levels = TreatedLevelSerializer(many=True)

    class Meta:
        model = Procedure
        fields = [
            "id",
            "patient",
            "site",
            "date",
            "cohort",
            "age_at_procedure",
            "technique",
            "adjunct",
            "anaesthesia",
            "image_guidance",
            # "operator" (free text, often a name) is left out: staff are not named here.
            "indication",
            "mri_stir_oedema",
            "biopsy_taken",
            "biopsy_result",
            "fluoroscopy_time_s",
            "dose_area_product",
            "absolute_contraindications",
            "relative_contraindications",
            "length_of_stay_days",
            "levels",
            *TIMESTAMPS,
        ]


class ComplicationSerializer(serializers.ModelSerializer):
    patient = serializers.CharField(source="patient.registry_id")
    site = serializers.CharField(source="patient.site.code")

    class Meta:
        model = Complication
        fields = [
            "id",
            "patient",
            "site",
            "procedure",
            "treated_level",
            *Complication.CLINICAL_FIELDS,
            *TIMESTAMPS,
        ]


class FollowUpSerializer(OfProcedure, serializers.ModelSerializer):
    class Meta:
        model = FollowUp
        fields = [
            "id",
            "procedure",
            "patient",
            "site",
            "cohort",
            "timepoint",
            "due_date",
            "window_start",
            "window_end",
            "state",
            "invited_on",
            "invitations_sent",
            "reminders_sent",
            "last_contact_on",
            "on_phone_worklist_since",
            "phone_outcome",
            "cancel_reason",
            "link_issued_at",
            "link_opened_at",
            "link_started_at",
            "link_submitted_at",
            "completed_at",
            *TIMESTAMPS,
        ]


class ResponseSerializer(OfProcedure, serializers.ModelSerializer):
    entered_by = StaffCodeField(
        source="entered_by_id",
        help_text="Pseudonymous code of the staff user who entered it (S and the user's id, "
        "e.g. S00042; never a name); null when the patient answered by link.",
    )

    class Meta:
        model = QuestionnaireResponse
        fields = [
            "id",
            "procedure",
            "patient",
            "site",
            "cohort",
            "timepoint",
            "mode",
            "answered_on",
            "entered_by",
            "vas_pain",
            "eq5d_version",
            "eq5d_mobility",
            "eq5d_self_care",
            "eq5d_usual_activities",
            "eq5d_pain_discomfort",
            "eq5d_anxiety_depression",
            "eq_vas",
            "eq5d_value_set",
            "eq5d_index",
            "odi_pain_intensity",
            "odi_personal_care",
            "odi_lifting",
            "odi_walking",
            "odi_sitting",
            "odi_standing",
            "odi_sleeping",
            "odi_sex_life",
            "odi_social_life",
            "odi_travelling",
            "odi_score",
            "scored_at",
            *TIMESTAMPS,
        ]


class DataQuerySerializer(serializers.ModelSerializer):
    """A query to a site: the record (pseudonymised label, type and id), the field, the
    question and answer, who took each step and when."""

    site = serializers.CharField(source="site.code")
    record_type = serializers.CharField(source="content_type.model")
    raised_by = StaffCodeField(source="raised_by_id")
    answered_by = StaffCodeField(source="answered_by_id")
    closed_by = StaffCodeField(source="closed_by_id")

    class Meta:
        model = DataQuery
        fields = [
            "id",
            "site",
            "record_type",
            "object_id",
            "record_label",
            "field_name",
            "state",
            "comment",
            "answer",
            "raised_by",
            "raised_at",
            "answered_by",
            "answered_at",
            "closed_by",
            "closed_at",
            *TIMESTAMPS,
        ]
