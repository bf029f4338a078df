"""Locks on records and signatures over them (``registry.locking`` enforces both).

A lock or a signature covers a whole patient's record, or one follow-up's data (a procedure
and a timepoint of the follow-up plan, ``outcomes.followups.schedule``). Both rows are
append-only but for their one allowed change (a lock is unlocked with a reason, a signature is
voided) and keep their full history through pghistory, with the acting user.
"""

from __future__ import annotations

import pgtrigger
from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from registry.models import Patient, Procedure, ScopedQuerySet, constrain_choices, track_history
from registry.validation import no_cpr_check, validate_no_cpr

BLANK = r"^\s*$"


class PatientScopedQuerySet(ScopedQuerySet):
    site_path = "patient__site"


class RecordLockQuerySet(PatientScopedQuerySet):
    def active(self) -> RecordLockQuerySet:
        return self.filter(unlocked_at__isnull=True)

    def covering(
        self, *, patient_id: int, procedure_id: int | None = None, timepoint: str = ""
    ) -> RecordLockQuerySet:
        """The active locks that cover the patient's record, or the follow-up's data (the
        same rule as ``registry.locking.COVERS``)."""
        follow_up = Q(procedure__isnull=True)
        if procedure_id is not None:
            follow_up |= Q(procedure_id=procedure_id, timepoint=timepoint)
        return self.active().filter(follow_up, patient_id=patient_id)


def _only_change(allowed: list[str], *, once: str, message: str) -> pgtrigger.Trigger:
    """Refuse any update but setting ``allowed`` while ``once`` is still empty."""
    columns = "ARRAY[" + ", ".join(f"'{c}'" for c in allowed) + "]::text[]"
    return pgtrigger.Trigger(
        name="only_closed_once",
        when=pgtrigger.Before,
        operation=pgtrigger.Update,
        func=f"""
        IF OLD.{once} IS NOT NULL
           OR (to_jsonb(NEW) - {columns}) IS DISTINCT FROM (to_jsonb(OLD) - {columns}) THEN
            RAISE EXCEPTION '{message}' USING ERRCODE = 'check_violation';
        END IF;
        RETURN NEW;
        """,
    )


@track_history()
class RecordLock(models.Model):
    """A data manager's lock on a record: no change until it is unlocked with a reason."""

    patient = models.ForeignKey(
        Patient, on_delete=models.CASCADE, related_name="locks", verbose_name=_("patient")
    )
    # With a timepoint: only that follow-up's data (its questionnaire response) is locked.
    procedure = models.ForeignKey(
        Procedure,
        on_delete=models.CASCADE,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("procedure"),
    )
    timepoint = models.CharField(_("timepoint"), max_length=12, blank=True)
    reason = models.TextField(_("reason for locking"), validators=[validate_no_cpr])
    locked_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("locked by"),
    )
    locked_at = models.DateTimeField(_("locked at"), default=timezone.now)
    unlocked_at = models.DateTimeField(_("unlocked at"), null=True, blank=True)
    unlocked_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("unlocked by"),
    )
    unlock_reason = models.TextField(
        _("reason for unlocking"), blank=True, validators=[validate_no_cpr]
    )

    objects = RecordLockQuerySet.as_manager()

    class Meta:
        verbose_name = _("record lock")
        verbose_name_plural = _("record locks")
        ordering = ["-locked_at", "-pk"]
        permissions = [("lock_record", _("Can lock and unlock records"))]
        indexes = [
            # The guard triggers' first probe (is anything locked at all?) and a patient's
            # active locks (the record page, the admin).
            models.Index(
                fields=["patient"], condition=Q(unlocked_at__isnull=True), name="recordlock_active"
            ),
        ]
        constraints = [
            models.CheckConstraint(condition=~Q(reason__regex=BLANK), name="recordlock_reason"),
            models.CheckConstraint(
                condition=Q(unlocked_at__isnull=True, unlock_reason="")
                | (Q(unlocked_at__isnull=False) & ~Q(unlock_reason__regex=BLANK)),
                name="recordlock_unlock_reason",
            ),
            models.CheckConstraint(
                condition=Q(procedure__isnull=True, timepoint="")
                | (Q(procedure__isnull=False) & ~Q(timepoint="")),
                name="recordlock_follow_up_has_timepoint",
            ),
            models.UniqueConstraint(
                fields=["patient"],
                condition=Q(unlocked_at__isnull=True, procedure__isnull=True),
                name="recordlock_one_active_per_patient",
            ),
            models.UniqueConstraint(
                fields=["procedure", "timepoint"],
                condition=Q(unlocked_at__isnull=True, procedure__isnull=False),
                name="recordlock_one_active_per_follow_up",
            ),
            no_cpr_check("recordlock", "reason", "unlock_reason"),
        ]
        triggers = [
            _only_change(
                ["unlocked_at", "unlocked_by_id", "unlock_reason"],
                once="unlocked_at",
                message="a record lock is only ever unlocked, once",
            ),
            # Deleting an active lock would unlock without a reason (a patient's delete
            # cascades to its locks first).
            pgtrigger.Trigger(
                name="active_not_deleted",
                when=pgtrigger.Before,
                operation=pgtrigger.Delete,
                func="""
                IF OLD.unlocked_at IS NULL THEN
                    RAISE EXCEPTION 'the record of patient % is locked: a data manager must unlock it, with a reason, before it can change',
                        (SELECT registry_id FROM registry_patient WHERE id = OLD.patient_id)
                        USING ERRCODE = 'check_violation', CONSTRAINT = 'record_locked';
                END IF;
                RETURN OLD;
                """,  # noqa: E501
            ),
        ]

    def __str__(self) -> str:
        what = f" {self.timepoint}" if self.timepoint else ""
        return f"{self.patient}{what}"

    @property
    def is_active(self) -> bool:
        return self.unlocked_at is None


@track_history()
@constrain_choices
class Signature(models.Model):
    """A site investigator's electronic signature over a record, with its meaning and the
    SHA-256 of the data signed. Any later change to those data voids it (``registry.locking``):
    the record page and the exports then show it void and a new signature is needed."""

    class Meaning(models.TextChoices):
        COMPLETE_AND_ACCURATE = (
            "complete_accurate",
            _("I confirm these data are complete and accurate"),
        )
        REVIEWED = "reviewed", _("I have reviewed these data")
        APPROVED = "approved", _("I approve these data for analysis")

    patient = models.ForeignKey(
        Patient, on_delete=models.CASCADE, related_name="signatures", verbose_name=_("patient")
    )
    procedure = models.ForeignKey(
        Procedure,
        on_delete=models.CASCADE,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("procedure"),
    )
    timepoint = models.CharField(_("timepoint"), max_length=12, blank=True)
    signer = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.PROTECT,
        related_name="+",
        verbose_name=_("signed by"),
    )
    # The signer's printed name as it was when signing (the signature's manifestation).
    signer_name = models.CharField(_("name of signer"), max_length=300)
    meaning = models.CharField(_("meaning"), max_length=20, choices=Meaning)
    signed_at = models.DateTimeField(_("signed at"), default=timezone.now)
    data_hash = models.CharField(_("SHA-256 of the signed data"), max_length=64)
    voided_at = models.DateTimeField(_("voided at"), null=True, blank=True)
    void_reason = models.TextField(_("why void"), blank=True)

    objects = PatientScopedQuerySet.as_manager()

    class Meta:
        verbose_name = _("signature")
        verbose_name_plural = _("signatures")
        ordering = ["-signed_at", "-pk"]
        permissions = [("sign_record", _("Can sign records as site investigator"))]
        indexes = [
            # The guard triggers' first probe and a patient's valid signatures.
            models.Index(
                fields=["patient"], condition=Q(voided_at__isnull=True), name="signature_valid"
            ),
        ]
        constraints = [
            models.CheckConstraint(
                condition=Q(data_hash__regex=r"^[0-9a-f]{64}$"), name="signature_hash_sha256"
            ),
            models.CheckConstraint(
                condition=Q(procedure__isnull=True, timepoint="")
                | (Q(procedure__isnull=False) & ~Q(timepoint="")),
                name="signature_follow_up_has_timepoint",
            ),
            models.CheckConstraint(
                condition=Q(voided_at__isnull=True, void_reason="")
                | (Q(voided_at__isnull=False) & ~Q(void_reason__regex=BLANK)),
                name="signature_void_reason",
            ),
        ]
        triggers = [
            _only_change(
                ["voided_at", "void_reason"],
                once="voided_at",
                message="a signature is only ever voided, once",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.patient} {self.timepoint}".strip()

    @property
    def is_valid(self) -> bool:
        return self.voided_at is None
