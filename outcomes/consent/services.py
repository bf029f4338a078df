"""Consent: the current document, giving (link or paper), withdrawing, and who has which
version.

Withdrawal, whichever way it comes, sets the patient's consent withdrawn date, which stops the
chasing at once through the existing rule (``outcomes.models.patient_emailable``; the database
cancels the pending follow-ups in the same transaction).
"""

from __future__ import annotations

import datetime
import hashlib
import logging

from django.core.exceptions import ValidationError
from django.core.mail import EmailMessage
from django.db import transaction
from django.utils import timezone, translation
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _

from outcomes.consent import pdf
from outcomes.consent.models import ConsentDocument, ConsentRequest, PatientConsent
from outcomes.followups.schedule import local_today
from registry.models import Patient, PatientContact

logger = logging.getLogger(__name__)

SCAN_TYPES = {"application/pdf", "image/jpeg", "image/png"}
SCAN_MAX_BYTES = 10 * 1024 * 1024


def document_current(*, site, language: str, on: datetime.date) -> ConsentDocument | None:
    """The version in force at ``site`` in ``language`` on ``on``: the latest effective."""
    return (
        ConsentDocument.objects.filter(site=site, language=language, effective_from__lte=on)
        .order_by("-effective_from", "-pk")
        .first()
    )


def questions(document: ConsentDocument) -> list[tuple[str, str, bool]]:
    """(field, question in the active language, required) of ``document``'s consent form."""
    items = [
        (
            "agrees_registry",
            gettext(
                "I agree that my data are recorded in the registry and used for research, "
                "as described above."
            ),
            True,
        )
    ]
    if document.asks_contact:
        items.append(
            (
                "agrees_contact",
                gettext("I agree to be contacted for follow-up questionnaires."),
                False,
            )
        )
    return items


def shown(
    document: ConsentDocument,
    *,
    answers: dict[str, bool],
    typed_name: str,
    given_at: datetime.datetime,
    mode: str,
) -> pdf.Shown:
    """What the consent page showed, in the document's language, for the snapshot."""
    with translation.override(document.language):
        version = gettext("Version %(version)s, in force from %(date)s") % {
            "version": document.version,
            "date": document.effective_from.isoformat(),
        }
        if mode == PatientConsent.Mode.LINK:
            signature = gettext("Signed by typing the name: %(name)s") % {"name": typed_name}
        else:
            signature = gettext("Signed on paper; the scan is kept with this record.")
        return pdf.Shown(
            title=document.title,
            version_line=f"{document.site.name} · {version}".replace("·", "-"),
            paragraphs=document.paragraphs(),
            answers=[(text, bool(answers.get(field))) for field, text, _r in questions(document)],
            signature_line=signature,
            given_line=gettext("Given %(when)s (UTC)")
            % {"when": given_at.astimezone(datetime.UTC).strftime("%Y-%m-%d %H:%M:%S")},
        )


def _clean_answers(document: ConsentDocument, answers: dict[str, bool]) -> dict[str, bool | None]:
    with translation.override(document.language):
        missing = [
            text
            for field, text, required in questions(document)
            if required and not answers.get(field)
        ]
    if missing:
        raise ValidationError(
            {"agrees_registry": _("Tick the questions marked as required to give consent.")}
        )
    return {
        "agrees_registry": True,
        "agrees_contact": bool(answers.get("agrees_contact")) if document.asks_contact else None,
    }


def _store(
    *,
    patient: Patient,
    document: ConsentDocument,
    mode: str,
    answers: dict[str, bool],
    typed_name: str,
    given_at: datetime.datetime,
    user=None,
    scan: bytes | None = None,
    scan_name: str = "",
) -> PatientConsent:
    cleaned = _clean_answers(document, answers)
    snapshot = shown(document, answers=answers, typed_name=typed_name, given_at=given_at, mode=mode)
    try:
        snapshot_pdf = pdf.render_pdf(snapshot, created=given_at)
    except pdf.NotLatin1 as error:
        raise ValidationError(
            {"typed_name": _("Use letters of the Danish or English alphabet for your name.")}
        ) from error
    consent = PatientConsent(
        patient=patient,
        document=document,
        mode=mode,
        given_at=given_at,
        typed_name=typed_name,
        snapshot_pdf=snapshot_pdf,
        snapshot_sha256=hashlib.sha256(snapshot_pdf).hexdigest(),
        scan=scan,
        scan_name=scan_name,
        scan_sha256=hashlib.sha256(scan).hexdigest() if scan is not None else "",
        recorded_by=user,
        **cleaned,
    )
    consent.full_clean(exclude=["snapshot_pdf", "scan"])
    consent.save()
    if cleaned["agrees_contact"] is not None:
        # The contact question answered here is the consent to be contacted (chasing).
        PatientContact.objects.filter(patient=patient).update(
            consent_to_contact=cleaned["agrees_contact"]
        )
    return consent


@transaction.atomic
def consent_give(
    *,
    request: ConsentRequest,
    document: ConsentDocument,
    answers: dict[str, bool],
    typed_name: str,
    now: datetime.datetime,
) -> PatientConsent:
    """The patient's consent through their link, to the ``document`` they were shown."""
    request = ConsentRequest.objects.select_for_update().get(pk=request.pk)
    if request.consent_id is not None and request.consent.withdrawn_at is None:
        return request.consent  # a second submit of the same page: the first stands
    patient = request.patient
    current = document_current(
        site=patient.site, language=document.language, on=local_today(now, patient.site.time_zone)
    )
    if current is None or current.pk != document.pk:
        raise ValidationError(_("This consent text has just been replaced: read the new one."))
    typed_name = " ".join((typed_name or "").split())
    if not typed_name:
        raise ValidationError({"typed_name": _("Type your full name to sign.")})
    consent = _store(
        patient=patient,
        document=document,
        mode=PatientConsent.Mode.LINK,
        answers=answers,
        typed_name=typed_name,
        given_at=now,
    )
    ConsentRequest.objects.filter(pk=request.pk).update(consent=consent)
    transaction.on_commit(lambda: consent_copy_send(consent_id=consent.pk))
    return consent


@transaction.atomic
def consent_record_paper(
    *,
    patient: Patient,
    document: ConsentDocument,
    user,
    given_on: datetime.date,
    answers: dict[str, bool],
    scan: bytes,
    scan_name: str,
    content_type: str,
) -> PatientConsent:
    """Staff record a consent given on paper, with the scan of the signed form."""
    if document.site_id != patient.site_id:
        raise ValidationError({"document": _("Choose a consent document of the patient's site.")})
    if content_type not in SCAN_TYPES:
        raise ValidationError({"scan": _("Upload the scan as PDF, JPEG or PNG.")})
    if not scan or len(scan) > SCAN_MAX_BYTES:
        raise ValidationError({"scan": _("The scan must be a file of at most 10 MB.")})
    if (
        given_on > local_today(timezone.now(), patient.site.time_zone)
        or given_on < patient.date_of_birth
    ):
        raise ValidationError({"given_on": _("The date of the paper consent is not possible.")})
    given_at = datetime.datetime.combine(given_on, datetime.time(12), tzinfo=datetime.UTC)
    return _store(
        patient=patient,
        document=document,
        mode=PatientConsent.Mode.PAPER,
        answers=answers,
        typed_name="",
        given_at=given_at,
        user=user,
        scan=scan,
        scan_name=scan_name[:200],
    )


@transaction.atomic
def consent_withdraw(*, patient: Patient, now: datetime.datetime, by_link: bool, user=None) -> int:
    """Withdraw the patient's consents; the chasing stops at once (the withdrawn date).
    Returns how many consent records were withdrawn."""
    consents = PatientConsent.objects.select_for_update().filter(
        patient=patient, withdrawn_at__isnull=True
    )
    withdrawn = consents.update(
        withdrawn_at=now,
        withdrawal=PatientConsent.Withdrawal.LINK if by_link else PatientConsent.Withdrawal.STAFF,
        withdrawn_by=user,
    )
    today = local_today(now, patient.site.time_zone)
    Patient.objects.filter(pk=patient.pk, consent_withdrawn_date__isnull=True).update(
        consent_withdrawn_date=max(today, patient.consent_date)
    )
    return withdrawn


def consent_copy_send(*, consent_id: int) -> bool:
    """Email the patient their copy (the PDF snapshot). A refused or unreachable mail server
    loses nothing: the consent is stored and the copy can be downloaded through the link."""
    consent = PatientConsent.objects.select_related("document", "patient__contact").get(
        pk=consent_id
    )
    contact = getattr(consent.patient, "contact", None)
    if contact is None or not contact.email:
        return False
    with translation.override(consent.document.language):
        message = EmailMessage(
            subject=gettext("Your consent: %(title)s") % {"title": consent.document.title},
            body=gettext(
                "Thank you. Attached is a copy of the consent you gave, exactly as you saw it. "
                "Its SHA-256 fingerprint is %(sha)s."
            )
            % {"sha": consent.snapshot_sha256},
            to=[contact.email],
        )
    message.attach(
        f"consent-{consent.document.version}.pdf", bytes(consent.snapshot_pdf), "application/pdf"
    )
    try:
        message.send()
    except Exception:  # noqa: BLE001 - any mail failure: the consent itself stands
        logger.warning("consent copy not sent", extra={"consent": consent_id})
        return False
    return True


def state_of(
    document: ConsentDocument | None,
    *,
    withdrawn: datetime.datetime | None,
    documents: list[ConsentDocument],
    on: datetime.date,
) -> str:
    """The consent state of a patient whose latest consent is to ``document`` (None: no
    consent), given all the site's ``documents``: withdrawn, none, current, reconsent (a
    later version in force by ``on`` requires it) or older (a later version does not)."""
    if document is None:
        return "none"
    if withdrawn is not None:
        return "withdrawn"
    later = [
        d
        for d in documents
        if d.language == document.language
        and document.effective_from < d.effective_from <= on
        and d.pk != document.pk
    ]
    if not later:
        return "current"
    return "reconsent" if any(d.requires_reconsent for d in later) else "older"


def consent_status(
    patient: Patient,
    *,
    on: datetime.date,
    consents: list[PatientConsent] | None = None,
    documents: list[ConsentDocument] | None = None,
) -> tuple[PatientConsent | None, str]:
    """The patient's latest consent and its state (``state_of``). A page that has read them
    already passes ``consents`` (the patient's, newest first, with their documents) and
    ``documents`` (the site's), and no query is run."""
    if consents is None:
        consent = (
            PatientConsent.objects.filter(patient=patient)
            .select_related("document")
            .order_by("-given_at", "-pk")
            .first()
        )
    else:
        consent = consents[0] if consents else None
    if documents is None:
        documents = list(ConsentDocument.objects.filter(site=patient.site_id))
    document = consent.document if consent else None
    withdrawn = consent.withdrawn_at if consent else None
    return consent, state_of(document, withdrawn=withdrawn, documents=documents, on=on)


STATE_LABELS = {
    "current": _("consented to the version in force"),
    "older": _("consented to an earlier version (no re-consent required)"),
    "reconsent": _("re-consent needed: a new version requires it"),
    "none": _("no consent recorded in the registry"),
    "withdrawn": _("withdrawn"),
}
