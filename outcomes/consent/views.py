"""The patient's consent pages behind a personal link (/c/<token>/).

Like the questionnaire's pages: the token is the credential, every failure gets one neutral
page (rate-limited per client address), no JavaScript is needed, pages are in English and
Danish, and they carry the same no-store, CSP and no-referrer headers.
"""

from __future__ import annotations

import re

from django import forms
from django.conf import settings
from django.core.exceptions import ValidationError
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect
from django.urls import reverse
from django.utils import timezone, translation
from django.utils.translation import gettext_lazy as _
from django.views.decorators.http import require_http_methods

from outcomes.consent import links, services
from outcomes.consent.models import ConsentDocument, ConsentRequest
from outcomes.followups.schedule import local_today
from outcomes.questionnaire import ratelimit
from outcomes.questionnaire.views import LANGUAGE_CODES, _render, patient_page

QUESTIONNAIRE_PATH = re.compile(r"/q/[A-Za-z0-9_-]{43}/")


class ConsentForm(forms.Form):
    typed_name = forms.CharField(
        label=_("Your full name, typed as your signature"),
        max_length=200,
        widget=forms.TextInput(attrs={"autocomplete": "name"}),
    )

    def __init__(self, *args, document: ConsentDocument, **kwargs):
        super().__init__(*args, **kwargs)
        fields = {}
        for field, text, required in services.questions(document):
            fields[field] = forms.BooleanField(label=text, required=required)
        self.fields = {**fields, **self.fields}


def _language(request: HttpRequest, consent_request: ConsentRequest | None) -> str:
    for candidate in (
        request.GET.get("lang"),
        request.COOKIES.get(settings.LANGUAGE_COOKIE_NAME),
    ):
        if candidate in LANGUAGE_CODES:
            return candidate
    contact = getattr(consent_request.patient, "contact", None) if consent_request else None
    if contact is not None and contact.preferred_language in LANGUAGE_CODES:
        return contact.preferred_language
    return settings.LANGUAGE_CODE


def _unavailable(request: HttpRequest) -> HttpResponse:
    language = _language(request, None)
    address = request.META.get("REMOTE_ADDR", "")
    if ratelimit.link_failures_exceeded(address=address, now=timezone.now()):
        response = _render(
            request, "questionnaire/too_many.html", {}, language=language, status=429
        )
        response["Retry-After"] = str(settings.QUESTIONNAIRE_BAD_LINK_WINDOW_SECONDS)
        return response
    return _render(request, "consent/unavailable.html", {}, language=language, status=404)


def _document(consent_request: ConsentRequest, language: str) -> ConsentDocument | None:
    patient = consent_request.patient
    today = local_today(timezone.now(), patient.site.time_zone)
    return services.document_current(site=patient.site, language=language, on=today) or (
        services.document_current(site=patient.site, language=settings.LANGUAGE_CODE, on=today)
    )


@patient_page
@require_http_methods(["GET", "POST"])
def consent_page(request: HttpRequest, token: str) -> HttpResponse:
    """The consent text, the questions and the typed-name signature; after consenting, the
    patient's copy and the way to withdraw."""
    consent_request = links.request_for_token(token, now=timezone.now())
    if consent_request is None:
        return _unavailable(request)
    language = _language(request, consent_request)
    given = consent_request.consent
    # Back to the questionnaire that asked for this consent (its own path, nothing else).
    back = request.GET.get("next", "")
    back = back if QUESTIONNAIRE_PATH.fullmatch(back) else ""
    if given is not None and request.method == "GET":
        context = {"consent": given, "token": token, "back": back}
        return _render(request, "consent/given.html", context, language=language)
    document = _document(consent_request, language)
    if document is None:
        return _render(request, "consent/unavailable.html", {}, language=language, status=404)
    with translation.override(document.language):
        form = ConsentForm(request.POST or None, document=document)
        if request.method == "POST" and given is None:
            if form.is_valid() and str(document.pk) == request.POST.get("document"):
                answers = {k: v for k, v in form.cleaned_data.items() if k != "typed_name"}
                try:
                    services.consent_give(
                        request=consent_request,
                        document=document,
                        answers=answers,
                        typed_name=form.cleaned_data["typed_name"],
                        now=timezone.now(),
                    )
                except ValidationError as error:
                    for field, errors in getattr(
                        error, "error_dict", {None: error.messages}
                    ).items():
                        form.add_error(field if field in form.fields else None, errors)
                else:
                    url = reverse("consent", args=[token])
                    return redirect(f"{url}?next={back}" if back else url)
            elif form.is_valid():
                form.add_error(
                    None, _("This consent text has just been replaced: read the new one.")
                )
        elif request.method == "POST":
            return redirect("consent", token=token)
    context = {"document": document, "form": form, "token": token}
    return _render(request, "consent/form.html", context, language=document.language)


@patient_page
def consent_copy(request: HttpRequest, token: str) -> HttpResponse:
    """The patient's own copy: the PDF snapshot stored with their consent."""
    consent_request = links.request_for_token(token, now=timezone.now())
    if consent_request is None or consent_request.consent is None:
        return _unavailable(request)
    consent = consent_request.consent
    response = HttpResponse(bytes(consent.snapshot_pdf), content_type="application/pdf")
    response["Content-Disposition"] = (
        f'attachment; filename="consent-{consent.document.version}.pdf"'
    )
    return response


@patient_page
@require_http_methods(["GET", "POST"])
def consent_withdraw(request: HttpRequest, token: str) -> HttpResponse:
    consent_request = links.request_for_token(token, now=timezone.now())
    if consent_request is None or consent_request.consent is None:
        return _unavailable(request)
    language = _language(request, consent_request)
    if request.method == "POST":
        services.consent_withdraw(patient=consent_request.patient, now=timezone.now(), by_link=True)
        return redirect("consent", token=token)
    return _render(
        request,
        "consent/withdraw.html",
        {"token": token, "consent": consent_request.consent},
        language=language,
    )
