"""Read-only API views: thin wrappers over the domain's selectors."""

from __future__ import annotations

from rest_framework import serializers
from rest_framework.permissions import IsAuthenticated
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from outcomes.reports import ReportFilter, cohort_report


class CohortReportQuery(serializers.Serializer):
    site = serializers.ListField(child=serializers.CharField(max_length=12), required=False)
    date_from = serializers.DateField(required=False)
    date_to = serializers.DateField(required=False)
    as_of = serializers.DateField(required=False)

    def validate(self, attrs):
        start, end = attrs.get("date_from"), attrs.get("date_to")
        if start and end and start > end:
            raise serializers.ValidationError({"date_to": "The end date is before the start."})
        return attrs


class CohortReportView(APIView):
    """The cohort report (pathologic vs osteoporotic) for the caller's sites, as JSON: the
    same numbers as the admin page and `manage.py cohort_report`."""

    permission_classes = [IsAuthenticated]

    def get(self, request: Request) -> Response:
        query = CohortReportQuery(
            data={**request.query_params.dict(), "site": request.query_params.getlist("site")}
        )
        query.is_valid(raise_exception=True)
        data = query.validated_data
        filters = ReportFilter.of(
            sites=data.get("site"),
            date_from=data.get("date_from"),
            date_to=data.get("date_to"),
            as_of=data.get("as_of"),
        )
        return Response(cohort_report(user=request.user, filters=filters))
