"""Data freezes: a named, dated, read-only snapshot of every export, the data dictionary,
the codebook and the cohort report, so that a paper's tables can be regenerated
byte-identical years later (docs/import-export.md, "Data freezes").

A freeze holds the procedures dated on or before its as-of date (the exports' ``date_to``
filter, every site), as their data stood when the freeze was made; the report is computed
with the as-of date as its cut-off. Every file is stored as bytes with its row count and
SHA-256 in a manifest; database triggers refuse any change or removal afterwards. Files are
named ``freeze-<name>_<file>`` and the report says which freeze it comes from.

The records a freeze **includes** are the patients with a row in one of its stored export
files (``freeze_registry_ids``): read back from the frozen bytes, so a patient added or
back-dated after the freeze was made is never included, whatever its procedure date.
``freeze_records_lock`` / ``freeze_records_unlock`` lock or unlock those records
(``manage.py freeze_data --lock``, ``lock_records --freeze``, ``unlock_records --freeze``).
"""

from __future__ import annotations

import csv
import datetime
import hashlib
import io
import json
import re

from django.db import transaction
from django.http import HttpResponse, QueryDict
from django.urls import reverse
from django.utils import timezone
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema
from rest_framework.exceptions import APIException, NotFound
from rest_framework.permissions import BasePermission
from rest_framework.renderers import JSONRenderer
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from api import codebook, exports
from api.models import DataFreeze, DataFreezeFile, ExportLog
from api.services import export_log_finish, export_log_read, export_log_start
from outcomes.records.locking import BulkResult, records_lock, records_unlock
from outcomes.reports.dataset import parse_report_filter
from outcomes.reports.formats import report_csv, report_markdown, report_tidy_csv
from outcomes.reports.tables import cohort_report
from registry.access import is_registry_manager
from registry.models import Patient
from registry.project.admin_site import otp_required

NAME = re.compile(r"[a-z0-9][a-z0-9-]{0,59}")


class FreezeError(ValueError):
    """A freeze that cannot be made (bad name, existing name, unknown user): said to the caller."""


def _export_csv(export: exports.Export, *, user, as_of: datetime.date) -> tuple[bytes, int]:
    filterset = export.filterset(
        data={"date_to": as_of.isoformat()}, queryset=export.queryset(user)
    )
    if not filterset.is_valid():
        raise FreezeError(f"{export.name}: {filterset.errors}")
    sql, params = exports.export_sql(export, filterset.qs)
    counted: list[int] = []
    content = b"".join(
        exports.stream_csv(sql, params, on_finish=lambda rows, _done: counted.append(rows))
    )
    return content, counted[0]


def freeze_file_name(freeze_name: str, name: str) -> str:
    return f"freeze-{freeze_name}_{name}"


def data_freeze_create(*, name: str, as_of: datetime.date, user) -> DataFreeze:
    """Freeze every export, the dictionary, the codebook and the report as of ``as_of``,
    made by ``user`` (a registry manager: every site). Refuses a name already used."""
    if not NAME.fullmatch(name):
        raise FreezeError(f"name {name!r}: lower-case letters, digits and hyphens, at most 60")
    if not is_registry_manager(user):
        raise FreezeError(f"{user} is not a registry manager: a freeze covers every site")
    if DataFreeze.objects.filter(name=name).exists():
        raise FreezeError(f"a freeze named {name!r} exists; freezes are never replaced")
    if as_of > timezone.localdate():
        raise FreezeError(f"as-of date {as_of} is in the future")
    files: dict[str, tuple[bytes, int | None]] = {}
    with transaction.atomic():
        log = export_log_start(
            user=user,
            kind=ExportLog.Kind.EXPORT,
            resource=f"freeze/{name}"[:40],
            filters={"as_of": [as_of.isoformat()]},
        )
        for export in exports.EXPORTS.values():
            files[export.name] = _export_csv(export, user=user, as_of=as_of)
        dictionary = exports.dictionary_csv().encode()
        files["dictionary.csv"] = (dictionary, dictionary.count(b"\n") - 1)
        files["codebook.html"] = (
            codebook.codebook_html(codebook.sections_for(user)).encode(),
            None,
        )
        report = cohort_report(
            user=user,
            filters=parse_report_filter(
                QueryDict(f"as_of={as_of.isoformat()}&date_to={as_of.isoformat()}"), user=user
            ),
        )
        report["filter_text"] = (
            f"{report['filter_text']} From data freeze {name} (as of {as_of.isoformat()})."
        )
        files["cohort-report.md"] = (report_markdown(report).encode(), None)
        files["cohort-report.csv"] = (report_csv(report).encode(), None)
        files["cohort-report.tidy.csv"] = (report_tidy_csv(report).encode(), None)
        created_at = timezone.now()
        manifest = {
            "name": name,
            "as_of": as_of.isoformat(),
            "created_at": created_at.isoformat(),
            "created_by": f"S{user.pk:05d}",
            "files": [
                {
                    "name": freeze_file_name(name, file_name),
                    "rows": rows,
                    "bytes": len(content),
                    "sha256": hashlib.sha256(content).hexdigest(),
                }
                for file_name, (content, rows) in files.items()
            ],
        }
        freeze = DataFreeze.objects.create(
            name=name, as_of=as_of, created_at=created_at, created_by=user, manifest=manifest
        )
        manifest_bytes = (json.dumps(manifest, indent=2, ensure_ascii=False) + "\n").encode()
        files["manifest.json"] = (manifest_bytes, None)
        DataFreezeFile.objects.bulk_create(
            DataFreezeFile(
                freeze=freeze,
                name=freeze_file_name(name, file_name),
                content=content,
                rows=rows,
                sha256=hashlib.sha256(content).hexdigest(),
            )
            for file_name, (content, rows) in files.items()
        )
        export_log_finish(log=log, rows=len(files), completed=True)
    return freeze


# --- the records a freeze includes, and locking them --------------------------------------------


def freeze_registry_ids(freeze: DataFreeze) -> list[str]:
    """The registry ids of the patients the freeze includes: every id in the ``registry_id``
    column of one of its frozen export files (patients, procedures, levels, responses,
    complications, follow-ups, ...), read from the stored bytes after checking each file
    against its SHA-256. Sorted."""
    names = {freeze_file_name(freeze.name, name) for name in exports.EXPORTS}
    ids: set[str] = set()
    for file in freeze.files.filter(name__in=names).order_by("name"):
        content = bytes(file.content)
        if hashlib.sha256(content).hexdigest() != file.sha256:  # the database was tampered with
            raise FreezeError(f"{file.name} no longer matches its checksum")
        reader = csv.DictReader(io.StringIO(content.decode("utf-8-sig")))
        if "registry_id" in (reader.fieldnames or ()):
            ids.update(row["registry_id"] for row in reader if row["registry_id"])
    return sorted(ids)


def _freeze_records(freeze: DataFreeze, *, act, user, reason: str) -> BulkResult:
    ids = freeze_registry_ids(freeze)
    patients = Patient.objects.filter(registry_id__in=ids).order_by("registry_id")
    result = act(patients=patients.iterator(), user=user, reason=reason)
    found = set(result.done) | {registry_id for registry_id, _why in result.refused}
    gone = [registry_id for registry_id in ids if registry_id not in found]
    result.refused.extend((registry_id, "no longer in the registry") for registry_id in gone)
    return result


def freeze_records_lock(freeze: DataFreeze, *, user, reason: str) -> BulkResult:
    """Lock the whole record of every patient the freeze includes (each in its own
    transaction; open queries or an existing lock leave a record out, listed in
    ``refused``)."""
    return _freeze_records(freeze, act=records_lock, user=user, reason=reason)


def freeze_records_unlock(freeze: DataFreeze, *, user, reason: str) -> BulkResult:
    """Lift every active lock of every patient the freeze includes, with ``reason``."""
    return _freeze_records(freeze, act=records_unlock, user=user, reason=reason)


# --- the views: listed and downloaded by registry managers --------------------------------------


class IsRegistryManager(BasePermission):
    """Registry managers (a freeze covers every site), with the second factor a staff
    session needs, as :class:`api.permissions.CanViewModel` asks."""

    def has_permission(self, request, view) -> bool:
        user = request.user
        if not (user and user.is_authenticated and user.is_active):
            return False
        if request.auth is None and otp_required(user) and not user.is_verified():
            return False
        return is_registry_manager(user)


class FreezeListView(APIView):
    """Every data freeze with its manifest (registry managers only)."""

    permission_model = DataFreeze
    permission_classes = [IsRegistryManager]
    renderer_classes = [JSONRenderer]

    @extend_schema(
        operation_id="freezes_list",
        responses={200: {"type": "array", "items": {"type": "object"}}},
    )
    def get(self, request: Request) -> Response:
        freezes = list(DataFreeze.objects.all())
        export_log_read(user=request.user, resource="freezes", filters={}, rows=len(freezes))
        return Response(
            [
                {
                    **freeze.manifest,
                    "files": [
                        {
                            **entry,
                            "url": request.build_absolute_uri(
                                reverse("api_freeze_file", args=[freeze.name, entry["name"]])
                            ),
                        }
                        for entry in freeze.manifest["files"]
                    ],
                }
                for freeze in freezes
            ]
        )


class FreezeFileView(APIView):
    """One file of a freeze, as stored (registry managers only; every download logged)."""

    permission_model = DataFreeze
    permission_classes = [IsRegistryManager]
    renderer_classes = [JSONRenderer]

    @extend_schema(
        operation_id="freeze_file",
        responses={(200, "application/octet-stream"): OpenApiTypes.BINARY},
    )
    def get(self, request: Request, name: str, file_name: str) -> HttpResponse:
        file = DataFreezeFile.objects.filter(freeze__name=name, name=file_name).first()
        if file is None:
            raise NotFound(f"no file {file_name!r} in a freeze {name!r}")
        content = bytes(file.content)
        if hashlib.sha256(content).hexdigest() != file.sha256:  # the database was tampered with
            raise APIException(f"{file_name} no longer matches its checksum")
        export_log_read(
            user=request.user,
            resource=f"freeze/{name}"[:40],
            filters={"file": [file_name]},
            rows=file.rows or 0,
        )
        content_type = {
            ".csv": "text/csv; charset=utf-8",
            ".md": "text/markdown; charset=utf-8",
            ".html": "text/html; charset=utf-8",
            ".json": "application/json",
        }.get(file_name[file_name.rfind(".") :], "application/octet-stream")
        response = HttpResponse(content, content_type=content_type)
        response["Content-Disposition"] = f'attachment; filename="{file_name}"'
        response["X-Checksum-SHA256"] = file.sha256
        return response
