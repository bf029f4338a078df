"""Consent documents (versioned per site and language) and patients' consents.

A document version is never edited: a new text is a new version, so an old consent keeps
pointing at exactly the text it was given to. A consent is stored once, with the PDF snapshot
of what the patient was shown and answered and its SHA-256; the only later change the
database accepts is its withdrawal. The personal consent link (``ConsentRequest``) follows
the questionnaire's token rules (``outcomes.consent.links``).
"""

from __future__ import annotations

import pgtrigger
from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils.translation import gettext_lazy as _

from registry.models import Patient, ScopedQuerySet, Site, constrain_choices, track_history
from registry.validation import validate_no_cpr

SHA256 = r"^[0-9a-f]{64}$"


def _immutable(name: str, message: str, *, allowed: list[str] | None = None):
    """Refuse updates (but of ``allowed``, set once while ``withdrawn_at`` is empty)."""
    if allowed is None:
        func = f"RAISE EXCEPTION '{message}' USING ERRCODE = 'check_violation'; RETURN NULL;"
    else:
        columns = "ARRAY[" + ", ".join(f"'{c}'" for c in allowed) + "]::text[]"
        func = f"""
        IF OLD.withdrawn_at IS NOT NULL
           OR (to_jsonb(NEW) - {columns}) IS DISTINCT FROM (to_jsonb(OLD) - {columns}) THEN
            RAISE EXCEPTION '{message}' USING ERRCODE = 'check_violation';
        END IF;
        RETURN NEW;"""
    return pgtrigger.Trigger(
        name=name, when=pgtrigger.Before, operation=pgtrigger.Update, func=func
    )


class SiteScoped(ScopedQuerySet):
    site_path = "site"


class PatientScoped(ScopedQuerySet):
    site_path = "patient__site"


@track_history()
@constrain_choices
class ConsentDocument(models.Model):
    """One version of a site's consent text in one language."""

    site = models.ForeignKey(
        Site, on_delete=models.PROTECT, related_name="consent_documents", verbose_name=_("site")
    )
    language = models.CharField(_("language"), max_length=8, choices=settings.LANGUAGES)
    version = models.CharField(_("version"), max_length=20)
    title = models.CharField(_("title"), max_length=200)
    text = models.TextField(_("text"), help_text=_("Paragraphs separated by an empty line."))
    asks_contact = models.BooleanField(
        _("asks consent to follow-up contact"),
        default=True,
        help_text=_("Ask, as a separate optional question, whether we may contact the patient."),
    )
    effective_from = models.DateField(_("effective from"))
    requires_reconsent = models.BooleanField(
        _("requires re-consent"),
        default=False,
        help_text=_("Patients who consented to an earlier version must consent to this one."),
    )
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)

    objects = SiteScoped.as_manager()

    class Meta:
        verbose_name = _("consent document")
        verbose_name_plural = _("consent documents")
        ordering = ["site", "language", "-effective_from", "-pk"]
        constraints = [
            models.UniqueConstraint(
                fields=["site", "language", "version"], name="consentdocument_one_per_version"
            ),
            models.CheckConstraint(
                condition=~Q(text__regex=r"^\s*$") & ~Q(version__regex=r"^\s*$"),
                name="consentdocument_has_text_and_version",
            ),
        ]
        triggers = [
            _immutable(
                "never_edited",
                "a consent document is never edited: add a new version",
            )
        ]

    def __str__(self) -> str:
        return f"{self.site.code} {self.language} v{self.version}"

    def paragraphs(self) -> list[str]:
        return [
            " ".join(p.split()) for p in self.text.replace("\r\n", "\n").split("\n\n") if p.strip()
        ]


@track_history(*["snapshot_pdf", "scan"])
@constrain_choices
class PatientConsent(models.Model):
    """A patient's consent to one document version: immutable but for its withdrawal."""

    class Mode(models.TextChoices):
        LINK = "link", _("Electronic, through the personal link")
        PAPER = "paper", _("Paper, scanned by staff")

    class Withdrawal(models.TextChoices):
        LINK = "link", _("By the patient, through the link")
        STAFF = "staff", _("Recorded by staff")

    patient = models.ForeignKey(
        Patient, on_delete=models.PROTECT, related_name="consents", verbose_name=_("patient")
    )
    document = models.ForeignKey(
        ConsentDocument,
        on_delete=models.PROTECT,
        related_name="consents",
        verbose_name=_("consent document"),
    )
    mode = models.CharField(_("mode"), max_length=8, choices=Mode)
    given_at = models.DateTimeField(_("given at"))
    typed_name = models.CharField(
        _("name typed as signature"), max_length=200, blank=True, validators=[validate_no_cpr]
    )
    agrees_registry = models.BooleanField(_("agrees to registry use"))
    agrees_contact = models.BooleanField(_("agrees to follow-up contact"), null=True)
    snapshot_pdf = models.BinaryField(_("PDF snapshot"))
    snapshot_sha256 = models.CharField(_("SHA-256 of the PDF snapshot"), max_length=64)
    scan = models.BinaryField(_("scan of the paper form"), null=True, blank=True)
    scan_name = models.CharField(_("file name of the scan"), max_length=200, blank=True)
    scan_sha256 = models.CharField(_("SHA-256 of the scan"), max_length=64, blank=True)
    recorded_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("recorded by"),
    )
    withdrawn_at = models.DateTimeField(_("withdrawn at"), null=True, blank=True)
    withdrawal = models.CharField(_("withdrawal"), max_length=8, choices=Withdrawal, blank=True)
    withdrawn_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("withdrawal recorded by"),
    )

    objects = PatientScoped.as_manager()

    class Meta:
        verbose_name = _("patient consent")
        verbose_name_plural = _("patient consents")
        ordering = ["-given_at", "-pk"]
        indexes = [models.Index(fields=["patient", "-given_at"], name="consent_patient_latest")]
        constraints = [
            models.CheckConstraint(
                condition=Q(snapshot_sha256__regex=SHA256), name="consent_snapshot_sha256"
            ),
            models.CheckConstraint(
                condition=Q(agrees_registry=True), name="consent_agrees_to_registry_use"
            ),
            models.CheckConstraint(
                condition=~Q(mode="link") | ~Q(typed_name__regex=r"^\s*$"),
                name="consent_link_has_typed_name",
            ),
            models.CheckConstraint(
                condition=~Q(mode="paper") | (Q(scan__isnull=False) & Q(scan_sha256__regex=SHA256)),
                name="consent_paper_has_scan",
            ),
            models.CheckConstraint(
                condition=Q(withdrawn_at__isnull=True, withdrawal="")
                | Q(withdrawn_at__isnull=False) & ~Q(withdrawal=""),
                name="consent_withdrawal_consistent",
            ),
        ]
        triggers = [
            _immutable(
                "only_withdrawn",
                "a consent is never changed, only withdrawn once",
                allowed=["withdrawn_at", "withdrawal", "withdrawn_by_id"],
            )
        ]

    def __str__(self) -> str:
        return f"{self.patient} {self.document}"


class ConsentRequest(models.Model):
    """A patient's personal consent link: only the SHA-256 of its token is stored."""

    patient = models.ForeignKey(
        Patient, on_delete=models.CASCADE, related_name="+", verbose_name=_("patient")
    )
    nonce = models.CharField(max_length=32)
    token_hash = models.CharField(max_length=64, unique=True)
    issued_at = models.DateTimeField()
    expires_at = models.DateTimeField()
    replaced_at = models.DateTimeField(null=True, blank=True)
    consent = models.ForeignKey(
        PatientConsent, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )

    class Meta:
        verbose_name = _("consent link")
        verbose_name_plural = _("consent links")

    def __str__(self) -> str:
        return f"{self.patient} {self.issued_at:%Y-%m-%d}"
