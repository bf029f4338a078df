"""FHIR Bulk Data ``$export`` (Bulk Data Access IG 2.0.0,
https://hl7.org/fhir/uv/bulkdata/export.html): a system-level export of QuestionnaireResponse,
Patient and Procedure as NDJSON, so a hospital pulls everything without paging.

1. Kick-off: ``GET [base]/$export`` with ``Prefer: respond-async`` (``_type``, ``_since``,
   ``_outputFormat``) answers 202 with ``Content-Location``: the status URL.
2. Status: ``GET`` the status URL: 202 with ``X-Progress`` and ``Retry-After`` while it runs,
   200 with the manifest (``transactionTime``, ``request``, ``output`` files) when done, 500
   with an OperationOutcome when it failed; ``DELETE`` cancels it and drops its files (202).
3. Download: ``GET`` each ``output`` URL (same token) for ``application/fhir+ndjson``.

The export row is the truth; the Celery task is a hint and the periodic sweep
(``api.bulk_exports_sweep``) runs whatever is accepted, or was left running by a worker that
died. Only the user who kicked an export off may see its status and files; every download is
logged. Files are kept ``BULK_EXPORT_TTL_HOURS``.
"""

from __future__ import annotations

import datetime
import json
import logging

from django.conf import settings
from django.db import transaction
from django.db.models import Q
from django.http import HttpResponse
from django.urls import reverse
from django.utils import timezone
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema
from rest_framework.renderers import BaseRenderer, JSONRenderer
from rest_framework.request import Request
from rest_framework.response import Response

from api import fhir
from api.models import BulkExport, BulkExportFile
from api.services import export_log_read
from outcomes.models import QuestionnaireResponse
from registry.models import Patient, Procedure

logger = logging.getLogger(__name__)

TYPES = ("QuestionnaireResponse", "Patient", "Procedure")
NDJSON_FORMATS = {"application/fhir+ndjson", "application/ndjson", "ndjson"}
# A worker killed mid-export leaves the row running: after this long the sweep runs it again.
STALE_AFTER = datetime.timedelta(minutes=30)


def _resources(export: BulkExport, resource_type: str):
    """Every resource of one type the export's user may see (updated since ``since``)."""
    user = export.user
    since = Q(updated_at__gte=export.since) if export.since else Q()
    if resource_type == "Patient":
        rows = fhir.patients_for(user).filter(since).order_by("registry_id")
        return (fhir.patient_resource(row) for row in rows.iterator(chunk_size=2000))
    if resource_type == "Procedure":
        rows = fhir.procedures_for(user).filter(since).order_by("pk")
        return (fhir.procedure_resource(row) for row in rows.iterator(chunk_size=2000))
    rows = fhir.responses_for(user).filter(since).order_by("pk")
    return fhir.response_resources(rows.iterator(chunk_size=2000))


def enqueue_bulk_export(export_id) -> None:
    """Queue one export by its task's name (``api.tasks.run_bulk_export``, which imports this
    module); a broker that is down only delays it to the next sweep."""
    from celery import current_app

    try:
        current_app.send_task("api.run_bulk_export", (str(export_id),), retry=False)
    except Exception:
        logger.warning("bulk export %s not queued; the sweep will run it", export_id)


def bulk_export_kick_off(*, user, request_url: str, types: list[str], since) -> BulkExport:
    """A new export, accepted; its task is queued when the row is committed."""
    # Expired exports of this user go now (files are kept BULK_EXPORT_TTL_HOURS).
    expired = timezone.now() - datetime.timedelta(hours=settings.BULK_EXPORT_TTL_HOURS)
    BulkExport.objects.filter(user=user, created_at__lt=expired).delete()
    export = BulkExport.objects.create(user=user, request=request_url, types=types, since=since)
    transaction.on_commit(lambda: enqueue_bulk_export(export.pk))
    return export


def bulk_export_run(*, export_id) -> str:
    """Run one export if it is still to be run (accepted, or running but stale); idempotent:
    a second worker finds it claimed and returns."""
    now = timezone.now()
    claimable = Q(state=BulkExport.State.ACCEPTED) | Q(
        state=BulkExport.State.RUNNING, started_at__lt=now - STALE_AFTER
    )
    claimed = (
        BulkExport.objects.filter(claimable, pk=export_id)
        .exclude(state=BulkExport.State.COMPLETED)
        .update(state=BulkExport.State.RUNNING, started_at=now)
    )
    if not claimed:
        return "not claimed"
    export = BulkExport.objects.select_related("user").get(pk=export_id)
    outermost = not transaction.get_connection().in_atomic_block
    try:
        with transaction.atomic():
            if outermost:  # one snapshot for every file (not possible inside a test's transaction)
                with transaction.get_connection().cursor() as cursor:
                    cursor.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ")
            transaction_time = timezone.now()
            BulkExportFile.objects.filter(export=export).delete()
            number = 0
            per_file = settings.BULK_EXPORT_FILE_RESOURCES
            for resource_type in export.types:
                lines: list[str] = []

                def flush(resource_type=resource_type, lines=lines) -> None:
                    nonlocal number
                    number += 1
                    BulkExportFile.objects.create(
                        export=export,
                        number=number,
                        resource_type=resource_type,
                        count=len(lines),
                        content="".join(lines),
                    )
                    lines.clear()

                for resource in _resources(export, resource_type):
                    lines.append(json.dumps(resource, ensure_ascii=False, separators=(",", ":")))
                    lines[-1] += "\n"
                    if len(lines) == per_file:
                        flush()
                if lines:
                    flush()
            updated = BulkExport.objects.filter(pk=export.pk, state=BulkExport.State.RUNNING)
            updated.update(
                state=BulkExport.State.COMPLETED,
                transaction_time=transaction_time,
                finished_at=timezone.now(),
            )
    except Exception as error:
        logger.exception("bulk export %s failed", export_id)
        BulkExport.objects.filter(pk=export_id).update(
            state=BulkExport.State.FAILED, error=str(error)[:2000], finished_at=timezone.now()
        )
        return "failed"
    return "completed"


def bulk_exports_sweep() -> int:
    """Run every export accepted or left running by a dead worker; returns how many ran."""
    now = timezone.now()
    due = BulkExport.objects.filter(
        Q(state=BulkExport.State.ACCEPTED)
        | Q(state=BulkExport.State.RUNNING, started_at__lt=now - STALE_AFTER)
    ).values_list("pk", flat=True)
    return sum(bulk_export_run(export_id=pk) == "completed" for pk in list(due))


# --- the views ----------------------------------------------------------------------------------


def _since(values: list[str]) -> datetime.datetime | None:
    if not values:
        return None
    # An unencoded "+" of the offset arrives as a space.
    text = values[0].replace(" ", "+")
    try:
        moment = datetime.datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        moment = None
    if moment is None or moment.tzinfo is None:
        raise fhir.FHIRError(f"_since: {text!r} is not a FHIR instant (with its time zone)")
    return moment


class ExportKickOffView(fhir.FHIRView):
    """Bulk Data kick-off (``GET [base]/$export``): 202 and the status URL in
    ``Content-Location``. Parameters: ``_type`` (QuestionnaireResponse, Patient, Procedure;
    all when absent), ``_since`` (instant), ``_outputFormat`` (NDJSON only)."""

    permission_model = QuestionnaireResponse
    search_parameters = frozenset({"_type", "_since", "_outputFormat"})

    # Not in the OpenAPI schema: its generator drops the "$" of the path, so the schema named
    # /fhir/export, a path that does not exist. The operation follows the FHIR Bulk Data IG
    # (docs/import-export.md), which is its contract; the CapabilityStatement lists it.
    @extend_schema(exclude=True)
    def get(self, request: Request) -> Response:
        if "respond-async" not in request.headers.get("Prefer", ""):
            raise fhir.FHIRError("$export needs the header Prefer: respond-async")
        params = self.search_params(request)
        fmt = params.get("_outputFormat", ["application/fhir+ndjson"])[0]
        if fmt not in NDJSON_FORMATS:
            raise fhir.FHIRError(f"_outputFormat: {fmt!r} is not served; NDJSON only")
        types = [t for value in params.get("_type", []) for t in value.split(",") if t]
        unknown = sorted(set(types) - set(TYPES))
        if unknown:
            raise fhir.FHIRError(
                f"_type: {', '.join(unknown)} not exported (only {', '.join(TYPES)})"
            )
        # Each type needs its own view permission (an auditor reads all three).
        for model in {"Patient": Patient, "Procedure": Procedure}.values():
            if model.__name__ in (types or TYPES):
                meta = model._meta
                if not request.user.has_perm(f"{meta.app_label}.view_{meta.model_name}"):
                    raise fhir.FHIRError(f"you may not read {model.__name__} resources", 403)
        export = bulk_export_kick_off(
            user=request.user,
            request_url=request.build_absolute_uri(),
            types=[t for t in TYPES if t in types] if types else list(TYPES),
            since=_since(params.get("_since", [])),
        )
        status_url = request.build_absolute_uri(reverse("fhir_bulk_status", args=[export.pk]))
        response = Response(status=202)
        response["Content-Location"] = status_url
        return response


def _own_export(request: Request, export_id) -> BulkExport:
    export = BulkExport.objects.filter(pk=export_id, user=request.user).first()
    if export is None:
        raise fhir.FHIRError(f"no bulk export {export_id} of yours", 404)
    return export


class ExportStatusView(fhir.FHIRView):
    """Bulk Data status: 202 while running, 200 with the manifest, 500 when it failed;
    DELETE cancels it."""

    permission_model = QuestionnaireResponse

    @extend_schema(responses=fhir.fhir_responses(200, 202, 500))
    def get(self, request: Request, export_id) -> Response:
        export = _own_export(request, export_id)
        if export.state == BulkExport.State.FAILED:
            return Response(
                fhir.operation_outcome(
                    f"the export failed: {export.error}", code="exception", severity="fatal"
                ),
                status=500,
            )
        if export.state != BulkExport.State.COMPLETED:
            response = Response(status=202)
            response["X-Progress"] = export.get_state_display()
            response["Retry-After"] = "5"
            return response
        files = export.files.only("number", "resource_type", "count")
        manifest = {
            "transactionTime": fhir._instant(export.transaction_time),
            "request": export.request,
            "requiresAccessToken": True,
            "output": [
                {
                    "type": f.resource_type,
                    "url": request.build_absolute_uri(
                        reverse("fhir_bulk_file", args=[export.pk, f.number])
                    ),
                    "count": f.count,
                }
                for f in files
            ],
            "error": [],
        }
        response = Response(manifest)
        expires = export.created_at + datetime.timedelta(hours=settings.BULK_EXPORT_TTL_HOURS)
        response["Expires"] = expires.strftime("%a, %d %b %Y %H:%M:%S GMT")
        # The manifest is plain JSON, not a FHIR resource (IG: "Content-Type: application/json").
        response.content_type = "application/json"
        return response

    @extend_schema(responses=fhir.fhir_responses(202))
    def delete(self, request: Request, export_id) -> Response:
        export = _own_export(request, export_id)
        export.delete()
        return Response(status=202)


class NDJSONRenderer(BaseRenderer):
    media_type = "application/fhir+ndjson"
    format = "ndjson"
    charset = "utf-8"

    def render(self, data, accepted_media_type=None, renderer_context=None) -> bytes:
        return data if isinstance(data, bytes) else json.dumps(data).encode()


class ExportFileView(fhir.FHIRView):
    """One NDJSON output file of a completed export of the caller's."""

    permission_model = QuestionnaireResponse
    renderer_classes = [NDJSONRenderer, fhir.FHIRRenderer, JSONRenderer]

    @extend_schema(
        responses={
            (200, "application/fhir+ndjson"): OpenApiTypes.STR,
            **fhir.fhir_responses(),
        }
    )
    def get(self, request: Request, export_id, number: int) -> HttpResponse:
        export = _own_export(request, export_id)
        file = export.files.filter(number=number).first()
        if export.state != BulkExport.State.COMPLETED or file is None:
            raise fhir.FHIRError(f"no file {number} in bulk export {export_id}", 404)
        export_log_read(
            user=request.user,
            resource=f"fhir/$export/{file.resource_type}"[:40],
            filters={"export": [str(export.pk)], "file": [str(number)]},
            rows=file.count,
        )
        return HttpResponse(file.content.encode(), content_type="application/fhir+ndjson")
