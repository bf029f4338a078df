"""Read-only API views: thin wrappers over the domain's querysets, each scoped to the
caller's sites in ``get_queryset`` (``for_user``) and logged in ``ExportLog``."""

from __future__ import annotations

import csv
import io

from django.db.models import F, Prefetch
from django.http import HttpResponse, StreamingHttpResponse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema, extend_schema_view
from rest_framework import viewsets
from rest_framework.exceptions import NotFound, ValidationError
from rest_framework.generics import GenericAPIView
from rest_framework.renderers import BaseRenderer, JSONRenderer
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from api import exports, filters
from api import serializers as api_serializers
from api.models import ExportLog
from api.services import export_log_finish, export_log_read, export_log_start
from outcomes.models import FollowUp, QuestionnaireResponse
from outcomes.quality.models import DataQuery
from outcomes.reports.dataset import ReportFilterError, parse_report_filter
from outcomes.reports.tables import cohort_report
from registry.models import (
    CompletedYears,
    Complication,
    Patient,
    Procedure,
    TreatedLevel,
)
from registry.project.db_router import reading_from_replica


def logged_filters(request: Request) -> dict:
    """The query parameters of a read, as the log keeps them (the cursor is only paging).
    NUL characters, which PostgreSQL's jsonb refuses, are kept visible as U+FFFD."""

    def clean(text: str) -> str:
        return text.replace("\x00", "\ufffd")

    return {
        clean(key): [clean(value) for value in request.query_params.getlist(key)]
        for key in request.query_params
        if key != "cursor"
    }


class LoggedReadOnlyViewSet(viewsets.ReadOnlyModelViewSet):
    """List and detail reads, each recorded with who, which filters and how many rows."""

    resource: str

    def list(self, request, *args, **kwargs):
        with reading_from_replica():
            response = super().list(request, *args, **kwargs)
        rows = len(response.data["results"])
        export_log_read(
            user=request.user, resource=self.resource, filters=logged_filters(request), rows=rows
        )
        return response

    def retrieve(self, request, *args, **kwargs):
        response = super().retrieve(request, *args, **kwargs)
        export_log_read(
            user=request.user,
            resource=self.resource,
            filters={"id": [str(kwargs[self.lookup_url_kwarg or self.lookup_field])]},
            rows=1,
        )
        return response


class PatientViewSet(LoggedReadOnlyViewSet):
    """Patients, pseudonymised: registry id, site, sex, age at the index procedure and vital
    status; never contact details or the date of birth."""

    resource = "patients"
    permission_model = Patient
    serializer_class = api_serializers.PatientSerializer
    filterset_class = filters.PatientFilter
    lookup_field = "registry_id"

    def get_queryset(self):
        return (
            Patient.objects.for_user(self.request.user)
            .with_index_procedure()
            .annotate(age_at_index=CompletedYears(F("index_date"), F("date_of_birth")))
            .select_related("site")
        )


class ProcedureViewSet(LoggedReadOnlyViewSet):
    """Procedures with their treated levels nested."""

    resource = "procedures"
    permission_model = Procedure
    serializer_class = api_serializers.ProcedureSerializer
    filterset_class = filters.ProcedureFilter

    def get_queryset(self):
        return (
            Procedure.objects.for_user(self.request.user)
            .annotate(age_at_procedure=CompletedYears(F("date"), F("patient__date_of_birth")))
            .select_related("patient__site")
            .prefetch_related(Prefetch("levels", TreatedLevel.objects.order_by("level")))
        )


class OfProcedureViewSet(LoggedReadOnlyViewSet):
    """Rows that belong to a procedure, each with that procedure's cohort, patient and site."""

    related: tuple[str, ...] = ()

    def get_queryset(self):
        return (
            self.permission_model.objects.for_user(self.request.user)
            .annotate(cohort=F("procedure__cohort"))
            .select_related("procedure__patient__site", *self.related)
        )


class TreatedLevelViewSet(OfProcedureViewSet):
    resource = "levels"
    permission_model = TreatedLevel
    serializer_class = api_serializers.TreatedLevelListSerializer
    filterset_class = filters.TreatedLevelFilter


class ComplicationViewSet(LoggedReadOnlyViewSet):
    resource = "complications"
    permission_model = Complication
    serializer_class = api_serializers.ComplicationSerializer
    filterset_class = filters.ComplicationFilter

    def get_queryset(self):
        return Complication.objects.for_user(self.request.user).select_related("patient__site")


class FollowUpViewSet(OfProcedureViewSet):
    resource = "followups"
    permission_model = FollowUp
    serializer_class = api_serializers.FollowUpSerializer
    filterset_class = filters.FollowUpFilter


class ResponseViewSet(OfProcedureViewSet):
    """Questionnaire responses: every answer and the scores computed from them."""

    resource = "responses"
    permission_model = QuestionnaireResponse
    serializer_class = api_serializers.ResponseSerializer
    filterset_class = filters.ResponseFilter


class CohortReportView(APIView):
    """The cohort report (pathologic vs osteoporotic) for the caller's sites, as JSON: the
    same numbers as the admin page and `manage.py cohort_report`. The filter is parsed by the
    report's one parser; a bad parameter answers 400 naming it."""

    permission_model = Procedure

    @extend_schema(
        parameters=[
            OpenApiParameter(
                "site", OpenApiTypes.STR, many=True, description="site code; repeat or a,b"
            ),
            OpenApiParameter("date_from", OpenApiTypes.DATE, description="index procedure from"),
            OpenApiParameter("date_to", OpenApiTypes.DATE, description="index procedure to"),
            OpenApiParameter("as_of", OpenApiTypes.DATE, description="data cut-off (today)"),
        ],
        responses={200: dict},
    )
    def get(self, request: Request) -> Response:
        # As on every list: a parameter given empty is refused (the admin page's form, which
        # submits its empty fields, shares the parser but not this rule).
        empty = sorted(
            name
            for name, values in request.query_params.lists()
            if any(not v.strip() for v in values)
        )
        if empty:
            raise ValidationError(
                {name: ["This parameter is empty: give a value or leave it out."] for name in empty}
            )
        try:
            filters = parse_report_filter(request.query_params, user=request.user)
        except ReportFilterError as exc:
            if set(exc.errors) == {"site"}:
                # A site that does not exist or is not the caller's: not found, as another
                # site's object is everywhere in the API.
                raise NotFound({"detail": "No such site among yours.", **exc.errors}) from exc
            raise ValidationError(exc.errors) from exc
        with reading_from_replica():
            report = cohort_report(user=request.user, filters=filters)
        patients = next(t for t in report["tables"] if t["id"] == "table_1")["numbers"]
        export_log_read(
            user=request.user, resource="reports/cohorts", filters=logged_filters(request),
            rows=sum(int(n["value"]) for n in patients
                     if n["row"] == "Patients, n" and n["column"] != "Overall"),
        )  # fmt: skip
        return Response(report)


# --- CSV exports ----------------------------------------------------------------------------


class CSVRenderer(BaseRenderer):
    """Lets a client ask for ``text/csv``; the export views write the bytes themselves."""

    media_type = "text/csv"
    format = "csv"
    charset = "utf-8"

    def render(self, data, accepted_media_type=None, renderer_context=None):
        if isinstance(data, str | bytes):
            return data
        # An error (400 on a bad filter, 401, 403) as a small CSV of field and message.
        out = io.StringIO()
        writer = csv.writer(out)
        writer.writerow(["field", "message"])
        items = data.items() if isinstance(data, dict) else [("", data)]
        for field, messages in items:
            for message in messages if isinstance(messages, list) else [messages]:
                writer.writerow([field, message])
        return out.getvalue()


class ExportView(GenericAPIView):
    """A streaming CSV export with the same filters and scope as its list endpoint."""

    export: exports.Export
    renderer_classes = [CSVRenderer, JSONRenderer]
    pagination_class = None

    @property
    def permission_model(self):
        return self.export.model

    @property
    def filterset_class(self):
        return self.export.filterset

    def get_queryset(self):
        return self.export.queryset(self.request.user)

    def check_permissions(self, request: Request) -> None:
        super().check_permissions(request)
        if not request.user.has_perms(self.export.permissions):
            self.permission_denied(request, message="Your role may not download this file.")

    def get(self, request: Request) -> StreamingHttpResponse:
        with reading_from_replica() as using:
            queryset = self.filter_queryset(self.get_queryset())  # 400 on a bad filter
            sql, params = exports.export_sql(self.export, queryset)
        log = export_log_start(
            user=request.user,
            kind=ExportLog.Kind.EXPORT,
            resource=self.export.name,
            filters=logged_filters(request),
        )

        def finish(rows: int, completed: bool) -> None:
            export_log_finish(log=log, rows=rows, completed=completed)

        # The rows stream after this view has returned: the replica's alias goes along.
        chunks = exports.started(exports.stream_csv(sql, params, on_finish=finish, using=using))
        response = StreamingHttpResponse(chunks, content_type="text/csv")
        response["Content-Disposition"] = f'attachment; filename="{self.export.name}"'
        response["Cache-Control"] = "no-store"
        return response


def export_view(export: exports.Export):
    view = type(
        f"{export.model.__name__}Export", (ExportView,), {"export": export, "__doc__": export.title}
    )
    schema = extend_schema(
        operation_id=f"export_{export.name.removesuffix('.csv')}",
        filters=True,
        summary=export.title,
        responses={(200, "text/csv"): OpenApiTypes.STR},
    )
    return extend_schema_view(get=schema)(view)


class DictionaryView(APIView):
    """The data dictionary of every export: column, label, type, unit, allowed values."""

    permission_model = Patient
    renderer_classes = [CSVRenderer, JSONRenderer]

    @extend_schema(responses={(200, "text/csv"): OpenApiTypes.STR})
    def get(self, request: Request) -> HttpResponse:
        response = HttpResponse(exports.dictionary_csv(), content_type="text/csv; charset=utf-8")
        response["Content-Disposition"] = 'attachment; filename="dictionary.csv"'
        return response


class DataQueryViewSet(LoggedReadOnlyViewSet):
    """Queries to sites (data resolution) with every step's user and time; the full history
    of each is in the admin."""

    resource = "queries"
    permission_model = DataQuery
    serializer_class = api_serializers.DataQuerySerializer
    filterset_class = filters.DataQueryFilter

    def get_queryset(self):
        return DataQuery.objects.for_user(self.request.user).select_related("site", "content_type")
