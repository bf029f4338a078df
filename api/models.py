"""What the API keeps: a log of every read and export (design.md §9).

API tokens themselves are django-rest-knox's ``AuthToken`` (only a SHA-512 digest is stored).
"""

from __future__ import annotations

import pgtrigger
from django.conf import settings
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
