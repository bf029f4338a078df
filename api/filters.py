"""The filters every list endpoint and export shares (django-filter).

Each model reaches its site, its procedure and that procedure's date along a different path;
the filter sets below only name those paths.
"""

from __future__ import annotations

import datetime

import django_filters
from django import forms
from django.db.models import Exists, OuterRef, Q

from outcomes.models import FollowUp, QuestionnaireResponse, Timepoint
from outcomes.quality.models import DataQuery
from registry.models import Cohort, Complication, Patient, Procedure, TreatedLevel

ISO_DATE = "%Y-%m-%d"


def _utc(moment: datetime.datetime) -> datetime.datetime:
    """In UTC: PostgreSQL refuses offsets beyond ±15:59 that ISO 8601 lets through."""
    return moment.astimezone(datetime.UTC)


class UTCIsoDateTimeField(django_filters.fields.IsoDateTimeField):
    """An ISO 8601 time, converted to UTC while the form is cleaned, so that a time at the
    edge of the calendar (``0001-01-01T00:00:00+00:01``, ``9999-12-31T23:59:59-23:00``),
    which has no UTC equivalent, is a 400 naming the parameter rather than a server error."""

    def to_python(self, value):
        moment = super().to_python(value)
        if moment is None:
            return None
        try:
            return _utc(moment)
        except OverflowError:
            raise forms.ValidationError(
                "This time is outside the calendar once converted to UTC.", code="overflow"
            ) from None


class UTCIsoDateTimeFilter(django_filters.IsoDateTimeFilter):
    field_class = UTCIsoDateTimeField


class CodeInFilter(django_filters.BaseInFilter, django_filters.CharFilter):
    """Comma-separated codes (``AAR,ODE``), each a plain string."""


class RefuseEmptyFilters:
    """Every filter set of the API: a parameter given empty is a 400, not a silent no-op."""

    def is_valid(self) -> bool:
        """django-filter ignores a parameter given empty (``?cohort=``); the API refuses it,
        since a client that sent one meant a filter and would silently get everything. So
        is an empty item in a list (``?site=AAR,,ODE``)."""
        valid = super().is_valid()
        for name, filter_ in self.filters.items():
            if name not in self.data:
                continue
            if hasattr(self.data, "getlist"):
                values = [str(value) for value in self.data.getlist(name)]
            else:
                values = [str(self.data.get(name))]
            items = [item for value in values for item in value.split(",")]
            if any(not value.strip() for value in values):
                self.form.add_error(name, "This parameter is empty: give a value or leave it out.")
                valid = False
            elif isinstance(filter_, CodeInFilter) and any(not item.strip() for item in items):
                self.form.add_error(name, "An empty item in the list: e.g. AAR,ODE.")
                valid = False
        return valid


class RegistryFilter(RefuseEmptyFilters, django_filters.FilterSet):
    site = CodeInFilter(method="filter_site", label="Site codes, comma-separated (e.g. AAR,ODE)")
    # ISO dates only: "10/03/2025" would be read as 3 October by Django's default formats
    date_from = django_filters.DateFilter(
        method="filter_date_from",
        label="Procedure date on or after (YYYY-MM-DD)",
        input_formats=[ISO_DATE],
    )
    date_to = django_filters.DateFilter(
        method="filter_date_to",
        label="Procedure date on or before (YYYY-MM-DD)",
        input_formats=[ISO_DATE],
    )
    cohort = django_filters.ChoiceFilter(
        choices=Cohort.choices, method="filter_cohort", label="Cohort of the procedure"
    )
    etiology = django_filters.ChoiceFilter(
        choices=TreatedLevel.Etiology.choices,
        method="filter_etiology",
        label="A treated level of this etiology",
    )
    updated_since = UTCIsoDateTimeFilter(
        method="filter_updated_since",
        label="Changed at or after this time (ISO 8601), for incremental pulls",
    )

    # Paths from the model, set by each subclass.
    site_lookup = "procedure__patient__site__code"
    date_lookup = "procedure__date"
    procedure_lookup = "procedure"  # the procedure's pk, for OuterRef

    def filter_site(self, queryset, name, value):
        return queryset.filter(**{f"{self.site_lookup}__in": value})

    def filter_date_from(self, queryset, name, value):
        return queryset.filter(**{f"{self.date_lookup}__gte": value})

    def filter_date_to(self, queryset, name, value):
        return queryset.filter(**{f"{self.date_lookup}__lte": value})

    def filter_cohort(self, queryset, name, value):
        procedures = Procedure.objects.filter(cohort=value)
        return queryset.filter(**{f"{self.procedure_lookup}__in": procedures.values("pk")})

    def filter_etiology(self, queryset, name, value):
        levels = TreatedLevel.objects.filter(
            procedure=OuterRef(self.procedure_lookup), etiology=value
        )
        return queryset.filter(Exists(levels))

    def filter_updated_since(self, queryset, name, value):
        return queryset.filter(updated_at__gte=value)


class PatientFilter(RegistryFilter):
    """Patients by their index (first) procedure: its date, cohort and levels."""

    site_lookup = "site__code"
    date_lookup = "index_date"
    procedure_lookup = "index_procedure_id"

    def filter_cohort(self, queryset, name, value):
        return queryset.filter(index_cohort=value)

    class Meta:
        model = Patient
        fields = ["site", "date_from", "date_to", "cohort", "etiology", "updated_since"]


class ProcedureFilter(RegistryFilter):
    site_lookup = "patient__site__code"
    date_lookup = "date"
    procedure_lookup = "pk"

    def filter_updated_since(self, queryset, name, value):
        """A procedure counts as changed when it or one of its treated levels (nested in
        it) changed."""
        levels = TreatedLevel.objects.filter(procedure=OuterRef("pk"), updated_at__gte=value)
        return queryset.filter(Q(updated_at__gte=value) | Exists(levels))

    class Meta:
        model = Procedure
        fields = ["site", "date_from", "date_to", "cohort", "etiology", "updated_since"]


class TreatedLevelFilter(RegistryFilter):
    def filter_etiology(self, queryset, name, value):
        return queryset.filter(etiology=value)  # this level's own etiology

    class Meta:
        model = TreatedLevel
        fields = ["site", "date_from", "date_to", "cohort", "etiology", "updated_since"]


class ComplicationFilter(RegistryFilter):
    site_lookup = "patient__site__code"

    class Meta:
        model = Complication
        fields = ["site", "date_from", "date_to", "cohort", "etiology", "updated_since"]


class TimepointFilter(RegistryFilter):
    timepoint = django_filters.ChoiceFilter(choices=Timepoint.choices)


class FollowUpFilter(TimepointFilter):
    state = django_filters.ChoiceFilter(choices=FollowUp.State.choices)

    class Meta:
        model = FollowUp
        fields = [
            "site", "date_from", "date_to", "cohort", "etiology", "timepoint", "state",
            "updated_since",
        ]  # fmt: skip


class ResponseFilter(TimepointFilter):
    class Meta:
        model = QuestionnaireResponse
        fields = [
            "site", "date_from", "date_to", "cohort", "etiology", "timepoint", "updated_since",
        ]  # fmt: skip


class DataQueryFilter(RefuseEmptyFilters, django_filters.FilterSet):
    """Queries to sites by site, state and time of the last step."""

    site = CodeInFilter(field_name="site__code", label="Site codes, comma-separated")
    state = django_filters.ChoiceFilter(choices=DataQuery.State.choices)
    updated_since = UTCIsoDateTimeFilter(
        method="filter_updated_since",
        label="Changed at or after this time (ISO 8601), for incremental pulls",
    )

    class Meta:
        model = DataQuery
        fields: list[str] = []

    def filter_updated_since(self, queryset, name, value):
        return queryset.filter(updated_at__gte=value)
