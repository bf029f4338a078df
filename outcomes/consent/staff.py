"""Staff pages for consent: send the personal link, record a paper consent with its scan,
record a withdrawal, download a stored snapshot or scan, and who has which version."""

from __future__ import annotations

from django import forms
from django.conf import settings
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied, ValidationError
from django.core.mail import EmailMessage
from django.core.paginator import Paginator
from django.db.models import OuterRef, Subquery
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils import timezone, translation
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _
from django.views.decorators.http import require_http_methods, require_POST

from outcomes.consent import links, services
from outcomes.consent.models import ConsentDocument, PatientConsent
from outcomes.followups.schedule import local_today
from registry.models import Patient, Site

MANAGE = "registry.change_patient"


def _patient(request: HttpRequest, registry_id: str) -> Patient:
    if not request.user.has_perm("registry.view_patient"):
        raise PermissionDenied
    patient = (
        Patient.objects.for_user(request.user)
        .select_related("site")
        .filter(registry_id=registry_id)
        .first()
    )
    if patient is None:
        raise Http404(_("No such record at your sites."))
    return patient


def _back(patient: Patient):
    return redirect("staff_record", registry_id=patient.registry_id)


@require_POST
def send_link(request: HttpRequest, registry_id: str) -> HttpResponse:
    """Issue a new consent link (replacing the last) and email it; without an email address
    the link is shown once, to hand over."""
    if not request.user.has_perm(MANAGE):
        raise PermissionDenied
    patient = _patient(request, registry_id)
    token = links.consent_link_issue(patient=patient, now=timezone.now())
    url = links.consent_link_url(token)
    contact = getattr(patient, "contact", None)
    if contact is None or not contact.email:
        messages.warning(
            request,
            _("No email address on file: give the patient this link: %(url)s") % {"url": url},
        )
        return _back(patient)
    language = (
        contact.preferred_language
        if contact.preferred_language in dict(settings.LANGUAGES)
        else settings.LANGUAGE_CODE
    )
    with translation.override(language):
        message = EmailMessage(
            subject=gettext("Your consent for the back treatment registry"),
            body=gettext(
                "Please read the consent for the registry and give or refuse it here:"
                "\n\n%(url)s\n\nThe link is personal; do not forward it."
            )
            % {"url": url},
            to=[contact.email],
        )
    try:
        message.send()
    except Exception:  # noqa: BLE001 - a mail failure is shown, the link still works
        messages.error(
            request,
            _("The mail server did not take the message: give the patient this link: %(url)s")
            % {"url": url},
        )
        return _back(patient)
    messages.success(request, _("Consent link emailed."))
    return _back(patient)


class PaperConsentForm(forms.Form):
    document = forms.ModelChoiceField(
        queryset=ConsentDocument.objects.none(), label=_("Consent document")
    )
    given_on = forms.DateField(
        label=_("Date signed on paper"), widget=forms.DateInput(attrs={"type": "date"})
    )
    agrees_registry = forms.BooleanField(label=_("Agrees to registry use"), required=True)
    agrees_contact = forms.BooleanField(label=_("Agrees to follow-up contact"), required=False)
    scan = forms.FileField(label=_("Scan of the signed form (PDF, JPEG or PNG)"))

    def __init__(self, *args, patient: Patient, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["document"].queryset = ConsentDocument.objects.filter(
            site=patient.site
        ).order_by("language", "-effective_from")


@require_http_methods(["GET", "POST"])
def paper_consent(request: HttpRequest, registry_id: str) -> HttpResponse:
    if not request.user.has_perm(MANAGE):
        raise PermissionDenied
    patient = _patient(request, registry_id)
    form = PaperConsentForm(request.POST or None, request.FILES or None, patient=patient)
    if request.method == "POST" and form.is_valid():
        upload = form.cleaned_data["scan"]
        try:
            services.consent_record_paper(
                patient=patient,
                document=form.cleaned_data["document"],
                user=request.user,
                given_on=form.cleaned_data["given_on"],
                answers={
                    "agrees_registry": form.cleaned_data["agrees_registry"],
                    "agrees_contact": form.cleaned_data["agrees_contact"],
                },
                scan=upload.read(services.SCAN_MAX_BYTES + 1),
                scan_name=upload.name,
                content_type=upload.content_type,
            )
        except ValidationError as error:
            for field, errors in getattr(error, "error_dict", {None: error.messages}).items():
                form.add_error(field if field in form.fields else None, errors)
        else:
            messages.success(request, _("Paper consent recorded."))
            return _back(patient)
    context = {
        **admin.site.each_context(request),
        "title": _("Record paper consent for %(id)s") % {"id": patient.registry_id},
        "patient": patient,
        "form": form,
    }
    return render(request, "admin/staff/consent_paper.html", context)


@require_http_methods(["GET", "POST"])
def withdraw(request: HttpRequest, registry_id: str) -> HttpResponse:
    if not request.user.has_perm(MANAGE):
        raise PermissionDenied
    patient = _patient(request, registry_id)
    if request.method == "POST":
        services.consent_withdraw(
            patient=patient, now=timezone.now(), by_link=False, user=request.user
        )
        messages.success(request, _("Withdrawal recorded: the patient is no longer contacted."))
        return _back(patient)
    context = {
        **admin.site.each_context(request),
        "title": _("Record withdrawal of consent for %(id)s") % {"id": patient.registry_id},
        "patient": patient,
    }
    return render(request, "admin/staff/consent_withdraw.html", context)


def download(request: HttpRequest, registry_id: str, consent_id: int, what: str) -> HttpResponse:
    patient = _patient(request, registry_id)
    if not request.user.has_perm("registry.view_patientcontact"):
        raise PermissionDenied
    consent = PatientConsent.objects.filter(pk=consent_id, patient=patient).first()
    if consent is None or (what == "scan" and consent.scan is None):
        raise Http404
    if what == "scan":
        content = bytes(consent.scan)
        kind = {"pdf": "application/pdf", "png": "image/png"}.get(
            consent.scan_name.rsplit(".", 1)[-1].lower(), "image/jpeg"
        )
        name = consent.scan_name
    else:
        content, kind, name = (
            bytes(consent.snapshot_pdf),
            "application/pdf",
            f"consent-{consent.pk}.pdf",
        )
    response = HttpResponse(content, content_type=kind)
    response["Content-Disposition"] = f'attachment; filename="{name}"'
    return response


def consent_overview(request: HttpRequest) -> HttpResponse:
    """Who has which version: a site's patients with their latest consent, 50 a page, in
    three queries (the site's documents, the count, one page annotated with the latest
    consent)."""
    if not request.user.has_perm("registry.view_patient"):
        raise PermissionDenied
    sites = list(Site.objects.for_user(request.user).order_by("code"))
    code = request.GET.get("site") or (sites[0].code if sites else "")
    site = next((s for s in sites if s.code == code), None)
    page = None
    rows = []
    if site is not None:
        today = local_today(timezone.now(), site.time_zone)
        documents = list(ConsentDocument.objects.filter(site=site))
        latest = PatientConsent.objects.filter(patient=OuterRef("pk")).order_by("-given_at", "-pk")
        patients = (
            Patient.objects.filter(site=site)
            .annotate(
                consent_id=Subquery(latest.values("pk")[:1]),
                consent_document=Subquery(latest.values("document")[:1]),
                consent_mode=Subquery(latest.values("mode")[:1]),
                consent_given=Subquery(latest.values("given_at")[:1]),
                consent_withdrawn=Subquery(latest.values("withdrawn_at")[:1]),
            )
            .order_by("registry_id")
        )
        page = Paginator(patients, 50).get_page(request.GET.get("page"))
        by_id = {d.pk: d for d in documents}
        for patient in page.object_list:
            document = by_id.get(patient.consent_document)
            rows.append(
                {
                    "patient": patient,
                    "document": document,
                    "mode": dict(PatientConsent.Mode.choices).get(patient.consent_mode, ""),
                    "given": patient.consent_given,
                    "state": services.STATE_LABELS[
                        services.state_of(
                            document,
                            withdrawn=patient.consent_withdrawn,
                            documents=documents,
                            on=today,
                        )
                    ],
                }
            )
    context = {
        **admin.site.each_context(request),
        "title": _("Consent versions"),
        "sites": sites,
        "site": site,
        "rows": rows,
        "page": page,
    }
    return render(request, "admin/staff/consent_overview.html", context)
