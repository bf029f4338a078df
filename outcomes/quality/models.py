"""Results of the data-quality rules: one run per site (nightly or on demand) and the records
each rule found in it. The page and the CSV read the latest finished run of each site."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.utils.translation import gettext_lazy as _


class QualityRun(models.Model):
    site = models.ForeignKey(
        "registry.Site", on_delete=models.CASCADE, related_name="+", verbose_name=_("site")
    )
    started_at = models.DateTimeField(_("started at"))
    finished_at = models.DateTimeField(_("finished at"), null=True, blank=True)
    # None for the nightly run (Celery beat).
    requested_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("requested by"),
    )
    counts = models.JSONField(_("counts"), default=dict)  # rule id -> records found

    class Meta:
        ordering = ["-started_at", "-pk"]
        # The page reads the latest finished run of each site.
        indexes = [models.Index(fields=["site", "-started_at"], name="qualityrun_site_latest_idx")]
        verbose_name = _("data-quality run")
        verbose_name_plural = _("data-quality runs")

    def __str__(self) -> str:
        return f"{self.site_id} {self.started_at:%Y-%m-%d %H:%M}"


class QualityFinding(models.Model):
    run = models.ForeignKey(
        QualityRun, on_delete=models.CASCADE, related_name="findings", verbose_name=_("run")
    )
    rule_id = models.CharField(_("rule id"), max_length=8)
    model = models.CharField(_("model"), max_length=64)  # app_label.model_name of the record
    object_id = models.PositiveBigIntegerField(_("object id"))
    record_label = models.CharField(_("record label"), max_length=200)

    class Meta:
        verbose_name = _("data-quality finding")
        verbose_name_plural = _("data-quality findings")
        ordering = ["rule_id", "record_label", "object_id"]
        constraints = [
            models.UniqueConstraint(
                fields=["run", "rule_id", "model", "object_id"], name="qualityfinding_once_per_run"
            )
        ]

    def __str__(self) -> str:
        return f"{self.rule_id}: {self.record_label}"
