"""The data-quality records.

- ``QualityRun`` and ``QualityFinding``: results of the data-quality rules, one run per site
  (nightly or on demand) and the records each rule found in it. The page and the CSV read the
  latest finished run of each site.
- ``WarningAcknowledgement``: warnings staff were shown for a record and saved anyway, with
  their reason.
- ``DataQuery``: queries to sites (data resolution: open → answered → closed).

The last two point at any clinical record (a patient, procedure, complication or
questionnaire response) through a content type and id, and carry the record's site so they
are scoped like the record. Both keep their full history through pghistory, so every step is
audited with the acting user. They were models of the registry app until issue 24 and keep
its tables (``registry_dataquery`` …); their content types and permissions moved with them.
"""

from __future__ import annotations

import pgtrigger
from django.conf import settings
from django.contrib.contenttypes.fields import GenericForeignKey
from django.contrib.contenttypes.models import ContentType
from django.contrib.postgres.fields import ArrayField
from django.db import models
from django.db.models import Q
from django.utils.translation import gettext_lazy as _

from registry import audit
from registry.models import ScopedQuerySet, Site, constrain_choices, track_history
from registry.validation import no_cpr_check, validate_no_cpr


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


class SiteScopedQuerySet(ScopedQuerySet):
    site_path = "site"


@track_history(meta={"db_table": "registry_warningacknowledgementevent"})
class WarningAcknowledgement(models.Model):
    """Warnings staff were shown for a record and saved anyway, with their reason."""

    content_type = models.ForeignKey(
        ContentType, on_delete=models.PROTECT, related_name="+", verbose_name=_("content type")
    )
    object_id = models.PositiveBigIntegerField(_("object id"))
    record = GenericForeignKey("content_type", "object_id")
    site = models.ForeignKey(
        Site, on_delete=models.PROTECT, related_name="+", verbose_name=_("site")
    )
    codes = ArrayField(models.CharField(max_length=40), verbose_name=_("codes"))
    messages = models.JSONField(_("messages"), default=list)
    reason = models.TextField(_("reason"), validators=[validate_no_cpr])
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("user"),
    )
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)

    objects = SiteScopedQuerySet.as_manager()

    class Meta:
        # Moved from the registry app (issue 24): same table, same rows.
        db_table = "registry_warningacknowledgement"
        ordering = ["-created_at", "-pk"]
        indexes = [
            # A record's acknowledgements (data-quality rules skip acknowledged records).
            models.Index(fields=["content_type", "object_id"], name="warningack_record_idx")
        ]
        constraints = [
            models.CheckConstraint(
                condition=~Q(reason__regex=r"^\s*$"), name="warningack_reason_given"
            ),
            no_cpr_check("warningacknowledgement", "reason"),
        ]
        verbose_name = _("warning saved anyway")
        verbose_name_plural = _("warnings saved anyway")
        # A saved warning is evidence of what staff were shown and why they went on: insert
        # only, for every role (the application's role also lacks UPDATE and DELETE,
        # registry.roles). docs/security.md, *Which tables change how*.
        triggers = [audit.append_only()]

    def __str__(self) -> str:
        return f"{', '.join(self.codes)}: {self.reason[:60]}"


# The steps of outcomes.quality.queries, in the database: the record, field, author and time
# raised never change; open → answered sets the answer and who answered; open or answered →
# closed sets who closed; answered or closed → open (reopen) brings a new question and clears
# the close. Nothing else: no rewrite of a question, an answer or a closing in place, no
# closed → answered, no DELETE.
QUERY_STEPS_ONLY = """
    IF TG_OP = 'DELETE' THEN
        RAISE EXCEPTION 'A query to a site is never deleted: DELETE on % refused.',
            TG_TABLE_NAME USING ERRCODE = 'insufficient_privilege';
    END IF;
    IF (NEW.id, NEW.site_id, NEW.content_type_id, NEW.object_id, NEW.record_label,
        NEW.field_name, NEW.raised_by_id, NEW.raised_at)
       IS DISTINCT FROM (OLD.id, OLD.site_id, OLD.content_type_id, OLD.object_id,
        OLD.record_label, OLD.field_name, OLD.raised_by_id, OLD.raised_at) THEN
        RAISE EXCEPTION 'A query''s record, field and author never change.'
            USING ERRCODE = 'insufficient_privilege';
    END IF;
    IF OLD.state = 'open' AND NEW.state = 'answered'
       AND NEW.comment = OLD.comment
       AND NEW.answered_by_id IS NOT NULL AND NEW.answered_at IS NOT NULL
       AND NEW.answered_at IS DISTINCT FROM OLD.answered_at
       AND (NEW.closed_by_id, NEW.closed_at) IS NOT DISTINCT FROM (OLD.closed_by_id, OLD.closed_at)
    THEN RETURN NEW; END IF;
    IF OLD.state IN ('open', 'answered') AND NEW.state = 'closed'
       AND (NEW.comment, NEW.answer, NEW.answered_by_id, NEW.answered_at)
           IS NOT DISTINCT FROM (OLD.comment, OLD.answer, OLD.answered_by_id, OLD.answered_at)
       AND NEW.closed_by_id IS NOT NULL AND NEW.closed_at IS NOT NULL
    THEN RETURN NEW; END IF;
    IF OLD.state IN ('answered', 'closed') AND NEW.state = 'open'
       AND (NEW.answer, NEW.answered_by_id, NEW.answered_at)
           IS NOT DISTINCT FROM (OLD.answer, OLD.answered_by_id, OLD.answered_at)
       AND NEW.closed_by_id IS NULL AND NEW.closed_at IS NULL
    THEN RETURN NEW; END IF;
    RAISE EXCEPTION 'A query to a site changes only by answer, close or reopen: % -> % refused.',
        OLD.state, NEW.state USING ERRCODE = 'insufficient_privilege';
"""


@track_history(meta={"db_table": "registry_dataqueryevent"})
@constrain_choices
class DataQuery(models.Model):
    """A monitor's question about one field of one record, and the site's answer."""

    class State(models.TextChoices):
        OPEN = "open", _("Open")
        ANSWERED = "answered", _("Answered")
        CLOSED = "closed", _("Closed")

    site = models.ForeignKey(
        Site, on_delete=models.PROTECT, related_name="data_queries", verbose_name=_("site")
    )
    content_type = models.ForeignKey(
        ContentType, on_delete=models.PROTECT, related_name="+", verbose_name=_("content type")
    )
    object_id = models.PositiveBigIntegerField(_("object id"))
    record = GenericForeignKey("content_type", "object_id")
    record_label = models.CharField(_("record"), max_length=200)
    field_name = models.CharField(_("field"), max_length=64)
    comment = models.TextField(_("question"), validators=[validate_no_cpr])
    state = models.CharField(_("state"), max_length=8, choices=State, default=State.OPEN)
    answer = models.TextField(_("answer"), blank=True, validators=[validate_no_cpr])
    raised_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.PROTECT,
        related_name="+",
        verbose_name=_("raised by"),
    )
    answered_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("answered by"),
    )
    closed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("closed by"),
    )
    raised_at = models.DateTimeField(_("raised at"), auto_now_add=True)
    answered_at = models.DateTimeField(_("answered at"), null=True, blank=True)
    closed_at = models.DateTimeField(_("closed at"), null=True, blank=True)
    # API: updated_since
    updated_at = models.DateTimeField(_("updated at"), auto_now=True, db_index=True)

    objects = SiteScopedQuerySet.as_manager()

    class Meta:
        # Moved from the registry app (issue 24): same table, same rows.
        db_table = "registry_dataquery"
        ordering = ["-raised_at", "-pk"]
        verbose_name = _("query to site")
        verbose_name_plural = _("queries to sites")
        permissions = [
            ("raise_dataquery", _("Can raise, close and reopen queries to sites")),
            ("answer_dataquery", _("Can answer queries to sites")),
        ]
        indexes = [
            # Open queries of a record (its page) and per site (the admin index).
            models.Index(fields=["content_type", "object_id"], name="dataquery_record_idx"),
            models.Index(
                fields=["site"], condition=~Q(state="closed"), name="dataquery_unresolved_idx"
            ),
        ]
        constraints = [
            models.CheckConstraint(
                condition=~Q(comment__regex=r"^\s*$"), name="dataquery_comment_given"
            ),
            models.CheckConstraint(
                condition=~Q(state="answered") | ~Q(answer__regex=r"^\s*$"),
                name="dataquery_answered_has_answer",
            ),
            models.CheckConstraint(
                condition=~Q(state="closed") | Q(closed_at__isnull=False),
                name="dataquery_closed_has_time",
            ),
            no_cpr_check("dataquery", "comment", "answer"),
        ]
        triggers = [
            # Each update is one step of outcomes.quality.queries (answer, close, reopen); a
            # query is never deleted (the application's role has no DELETE either,
            # registry.roles). Consults no session setting (registry.audit.StrictTrigger).
            audit.StrictTrigger(
                name="steps_only",
                when=pgtrigger.Before,
                operation=pgtrigger.Update | pgtrigger.Delete,
                func=QUERY_STEPS_ONLY,
            )
        ]

    def __str__(self) -> str:
        return f"{self.record_label} · {self.field_name} ({self.get_state_display()})"
