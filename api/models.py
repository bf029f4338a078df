"""What the API keeps: a log of every read and export (design.md §9).

API tokens themselves are django-rest-knox's ``AuthToken`` (only a SHA-512 digest is stored).
"""

from __future__ import annotations

import uuid

import pgtrigger
from django.conf import settings
from django.contrib.postgres.fields import ArrayField
from django.db import models
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from registry.audit import Refuse


class ExportLog(models.Model):
    """One API read or export: who, what, which filters, how many rows, when.

    A CSV export is logged when it starts and updated when the last row is sent, so an
    export that was cut off still shows, with the rows sent so far and ``completed`` false.
    """

    class Kind(models.TextChoices):
        READ = "read", _("API read")
        EXPORT = "export", _("CSV export")

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.PROTECT,
        related_name="export_logs",
        verbose_name=_("user"),
    )
    kind = models.CharField(_("kind"), max_length=6, choices=Kind)
    # The route's name, e.g. "procedures", "levels.csv".
    resource = models.CharField(_("resource"), max_length=40)
    # The query parameters as sent.
    filters = models.JSONField(_("filters"), default=dict, blank=True)
    rows = models.PositiveIntegerField(_("rows"), default=0)
    completed = models.BooleanField(_("completed"), default=False)
    started_at = models.DateTimeField(_("started at"), default=timezone.now, db_index=True)
    finished_at = models.DateTimeField(_("finished at"), null=True, blank=True)

    class Meta:
        ordering = ["-started_at", "-id"]
        verbose_name = _("API read or export")
        verbose_name_plural = _("API reads and exports")
        # The log cannot be rewritten: no row is ever deleted, and a row changes only once,
        # when its export closes (rows sent, completed, finish time), and nothing else.
        triggers = [
            Refuse(name="export_log_no_delete", operation=pgtrigger.Delete),
            Refuse(
                name="export_log_close_once",
                operation=pgtrigger.Update,
                condition=pgtrigger.Condition(
                    'OLD."finished_at" IS NOT NULL'
                    ' OR OLD."id" IS DISTINCT FROM NEW."id"'
                    ' OR OLD."user_id" IS DISTINCT FROM NEW."user_id"'
                    ' OR OLD."kind" IS DISTINCT FROM NEW."kind"'
                    ' OR OLD."resource" IS DISTINCT FROM NEW."resource"'
                    ' OR OLD."filters" IS DISTINCT FROM NEW."filters"'
                    ' OR OLD."started_at" IS DISTINCT FROM NEW."started_at"'
                ),
            ),
        ]

    def __str__(self) -> str:
        return f"{self.resource} by {self.user} at {self.started_at:%Y-%m-%d %H:%M}"


class BulkExport(models.Model):
    """One FHIR Bulk Data ``$export`` (kick-off, status, download; Bulk Data Access IG 2.0):
    the row is the truth of its state, the task that runs it only a hint (the periodic sweep
    runs whatever is accepted and not done)."""

    class State(models.TextChoices):
        ACCEPTED = "accepted", _("Accepted")
        RUNNING = "running", _("Running")
        COMPLETED = "completed", _("Completed")
        FAILED = "failed", _("Failed")

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.CASCADE,
        related_name="+",
        verbose_name=_("user"),
    )
    request = models.TextField(_("request"))  # the kick-off URL, as the status answer repeats it
    types = ArrayField(models.CharField(max_length=40), verbose_name=_("resource types"))
    since = models.DateTimeField(_("since"), null=True, blank=True)
    state = models.CharField(_("state"), max_length=10, choices=State, default=State.ACCEPTED)
    error = models.TextField(_("error"), blank=True)
    transaction_time = models.DateTimeField(_("transaction time"), null=True, blank=True)
    created_at = models.DateTimeField(_("created at"), default=timezone.now)
    started_at = models.DateTimeField(_("started at"), null=True, blank=True)
    finished_at = models.DateTimeField(_("finished at"), null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]
        verbose_name = _("bulk FHIR export")
        verbose_name_plural = _("bulk FHIR exports")
        indexes = [
            # the sweep: exports not finished
            models.Index(
                fields=["created_at"],
                name="bulk_export_open",
                condition=models.Q(state__in=["accepted", "running"]),
            )
        ]

    def __str__(self) -> str:
        return f"$export {self.pk} ({self.state})"


class BulkExportFile(models.Model):
    """One NDJSON output file of a bulk export (one resource type, at most
    ``BULK_EXPORT_FILE_RESOURCES`` resources)."""

    export = models.ForeignKey(
        BulkExport, on_delete=models.CASCADE, related_name="files", verbose_name=_("export")
    )
    number = models.PositiveIntegerField(_("number"))
    resource_type = models.CharField(_("resource type"), max_length=40)
    count = models.PositiveIntegerField(_("resources"))
    content = models.TextField(_("content"))

    class Meta:
        ordering = ["number"]
        verbose_name = _("bulk FHIR export file")
        verbose_name_plural = _("bulk FHIR export files")
        constraints = [
            models.UniqueConstraint(fields=["export", "number"], name="bulk_export_file_number")
        ]

    def __str__(self) -> str:
        return f"{self.resource_type} {self.number}"


def _read_only(name: str) -> list:
    # A freeze is evidence for a paper: once written, nothing may change or remove it, not
    # even the app's own database role (raw SQL included).
    return [
        pgtrigger.Protect(name=f"{name}_no_update", operation=pgtrigger.Update),
        pgtrigger.Protect(name=f"{name}_no_delete", operation=pgtrigger.Delete),
    ]


class DataFreeze(models.Model):
    """A named, dated, read-only snapshot of every export and the cohort report
    (``manage.py freeze_data``), with the manifest of its files' rows and SHA-256."""

    name = models.SlugField(_("name"), max_length=60, unique=True)
    as_of = models.DateField(_("as of"))
    created_at = models.DateTimeField(_("created at"), default=timezone.now)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.PROTECT,
        related_name="+",
        verbose_name=_("created by"),
    )
    manifest = models.JSONField(_("manifest"))

    class Meta:
        ordering = ["-created_at"]
        verbose_name = _("data freeze")
        verbose_name_plural = _("data freezes")
        triggers = _read_only("data_freeze")

    def __str__(self) -> str:
        return f"{self.name} (as of {self.as_of})"


class DataFreezeFile(models.Model):
    freeze = models.ForeignKey(
        DataFreeze, on_delete=models.PROTECT, related_name="files", verbose_name=_("freeze")
    )
    name = models.CharField(_("name"), max_length=100)
    content = models.BinaryField(_("content"))
    rows = models.PositiveIntegerField(_("rows"), null=True, blank=True)
    sha256 = models.CharField(_("SHA-256"), max_length=64)

    class Meta:
        ordering = ["name"]
        verbose_name = _("data freeze file")
        verbose_name_plural = _("data freeze files")
        constraints = [
            models.UniqueConstraint(fields=["freeze", "name"], name="data_freeze_file_name")
        ]
        triggers = _read_only("data_freeze_file")

    def __str__(self) -> str:
        return f"{self.freeze.name}/{self.name}"
