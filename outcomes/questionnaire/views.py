"""The patient's questionnaire pages behind a personal link (design.md §6).

Every page is public (the token is the credential), so each one: shows no personal data;
answers an unknown, expired, cancelled or used token with one neutral page and status;
counts such failures per client address and answers 429 past the limit (a valid token is
never refused, so a patient sharing an address with a scanner is not locked out); and sends
``no-store``, a strict Content-Security-Policy and ``Referrer-Policy: no-referrer``.

CSRF cookies are not used here: a forged cross-site post would need the secret token in its
URL, which is exactly what an attacker lacks, and some patients' browsers refuse cookies.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps

from django.conf import settings
from django.db import DatabaseError
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone, translation
from django.views.decorators.cache import never_cache
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_http_methods

from outcomes.followups import links
from outcomes.followups.schedule import local_today
from outcomes.models import FollowUp
from outcomes.questionnaire import answers as services
from outcomes.questionnaire import ratelimit
from outcomes.questionnaire.steps import (
    REVIEW,
    STEPS,
    StepForm,
    all_fields,
    first_incomplete_step,
    step_by_slug,
)
from registry.locking import is_lock_refusal

CONTENT_SECURITY_POLICY = "; ".join(
    [
        "default-src 'none'",
        "style-src 'self'",
        "script-src 'self'",
        "img-src 'self'",
        "form-action 'self'",
        "base-uri 'none'",
        "frame-ancestors 'none'",
    ]
)
LANGUAGE_CODES = {code for code, _name in settings.LANGUAGES}


def patient_page(view: Callable[..., HttpResponse]) -> Callable[..., HttpResponse]:
    """Headers every public questionnaire page carries."""

    @wraps(view)
    def wrapped(request: HttpRequest, *args, **kwargs) -> HttpResponse:
        response = view(request, *args, **kwargs)
        response["Content-Security-Policy"] = CONTENT_SECURITY_POLICY
        response["Referrer-Policy"] = "no-referrer"
        response["X-Robots-Tag"] = "noindex, nofollow"
        return response

    return csrf_exempt(never_cache(wrapped))


def _language(request: HttpRequest, followup: FollowUp | None) -> str:
    """The page's language: the one just picked on the page, else the one picked before
    (cookie), else the patient's preferred language, else the site default."""
    for candidate in (
        request.GET.get("lang"),
        request.COOKIES.get(settings.LANGUAGE_COOKIE_NAME),
    ):
        if candidate in LANGUAGE_CODES:
            return candidate
    if followup is not None and followup.preferred_language in LANGUAGE_CODES:
        return followup.preferred_language  # annotated by links.followup_for_token
    return translation.get_language() or settings.LANGUAGE_CODE


def _render(request: HttpRequest, template: str, context: dict, *, language: str, status=200):
    with translation.override(language):
        response = render(
            request,
            template,
            {**context, "languages": settings.LANGUAGES, "language": language},
            status=status,
        )
    if request.GET.get("lang") in LANGUAGE_CODES:
        response.set_cookie(
            settings.LANGUAGE_COOKIE_NAME,
            language,
            max_age=365 * 24 * 3600,
            samesite="Lax",
            secure=request.is_secure(),
            httponly=True,
        )
    return response


def _unavailable(request: HttpRequest, token: str = "") -> HttpResponse:
    """One page and one status for every token that cannot be answered, whatever the reason;
    HTTP 429 once a client has had too many of them. The one exception is the patient's own
    link after they submitted through it: that page says their answers were received (only
    the holder of the link can see it, so it tells nobody else anything)."""
    address = request.META.get("REMOTE_ADDR", "")
    submitted = links.followup_submitted_through(token) if token else None
    if submitted is not None:
        return _render(
            request,
            "questionnaire/received.html",
            {"timepoint": submitted.get_timepoint_display()},
            language=_language(request, submitted),
        )
    language = _language(request, None)
    if ratelimit.link_failures_exceeded(address=address, now=timezone.now()):
        response = _render(
            request, "questionnaire/too_many.html", {}, language=language, status=429
        )
        response["Retry-After"] = str(settings.QUESTIONNAIRE_BAD_LINK_WINDOW_SECONDS)
        return response
    return _render(request, "questionnaire/unavailable.html", {}, language=language, status=404)


def _answerable(token: str) -> FollowUp | None:
    return links.followup_for_token(token, now=timezone.now())


def _levels(followup: FollowUp) -> int:
    return followup.procedure.patient.site.eq5d_levels


def _answers(followup: FollowUp) -> dict:
    return followup.draft_answers or {}  # annotated by links.followup_for_token


def _progress(position: int) -> dict:
    total = len(STEPS) + 1  # the steps and the final check
    return {"position": position, "total": total}


@patient_page
@require_http_methods(["GET"])
def questionnaire_start(request: HttpRequest, token: str) -> HttpResponse:
    """Resume where the patient stopped: the first step not yet answered, else the check."""
    followup = _answerable(token)
    if followup is None:
        return _unavailable(request, token)
    services.link_opened(followup=followup, now=timezone.now())
    patient = followup.procedure.patient
    if patient.site.reconsent_before_questionnaire and _needs_reconsent(patient):
        context = {"token": token}
        return _render(
            request,
            "questionnaire/consent_first.html",
            context,
            language=_language(request, followup),
        )
    answers = _answers(followup)
    step = first_incomplete_step(answers, _levels(followup))
    language = _language(request, followup)
    context = {
        "token": token,
        "timepoint": followup.get_timepoint_display,
        "next_url": _step_url(token, step.slug if step else REVIEW),
        "resuming": bool(answers),
    }
    return _render(request, "questionnaire/start.html", context, language=language)


@patient_page
@require_http_methods(["GET", "POST"])
def questionnaire_step(request: HttpRequest, token: str, slug: str) -> HttpResponse:
    followup = _answerable(token)
    step = step_by_slug(slug)
    if followup is None or step is None:
        return _unavailable(request, token if step is not None else "")
    language = _language(request, followup)
    levels = _levels(followup)
    if request.method == "POST":
        with translation.override(language):
            form = StepForm(request.POST, step=step, eq5d_levels=levels)
            valid = form.is_valid()
        if valid:
            if not services.questionnaire_draft_save(
                followup=followup, answers=form.cleaned_data, now=timezone.now()
            ):
                return _unavailable(request, token)
            index = STEPS.index(step)
            following = STEPS[index + 1].slug if index + 1 < len(STEPS) else REVIEW
            return redirect(_step_url(token, following))
    else:
        form = StepForm(initial=_answers(followup), step=step, eq5d_levels=levels)
    index = STEPS.index(step)
    context = {
        "token": token,
        "step": step,
        "form": form,
        "progress": _progress(index + 1),
        "previous_url": _step_url(token, STEPS[index - 1].slug)
        if index
        else reverse("questionnaire", args=[token]),
    }
    return _render(request, "questionnaire/step.html", context, language=language)


def _needs_reconsent(patient) -> bool:
    from outcomes.consent.services import consent_status

    today = local_today(timezone.now(), patient.site.time_zone)
    return consent_status(patient, on=today)[1] == "reconsent"


@patient_page
@require_http_methods(["POST"])
def questionnaire_consent_first(request: HttpRequest, token: str) -> HttpResponse:
    """The patient asked for the new consent before their questionnaire: a consent link of
    their own, which leads back to this questionnaire once they have consented."""
    from outcomes.consent.links import consent_link_issue

    followup = _answerable(token)
    if followup is None:
        return _unavailable(request, token)
    consent_token = consent_link_issue(patient=followup.procedure.patient, now=timezone.now())
    return redirect(
        reverse("consent", args=[consent_token]) + "?next=" + reverse("questionnaire", args=[token])
    )


@patient_page
@require_http_methods(["GET", "POST"])
def questionnaire_review(request: HttpRequest, token: str) -> HttpResponse:
    """The answers for a last look, and the one submit."""
    if request.method == "POST":
        try:
            result = services.questionnaire_submit(token=token, now=timezone.now())
        except DatabaseError as error:
            if not is_lock_refusal(error):
                raise
            # A data manager locked this follow-up's data: nothing was saved, the draft is
            # kept (the submit's transaction was rolled back) for after an unlock.
            followup = _answerable(token)
            language = _language(request, followup)
            return _render(request, "questionnaire/closed.html", {}, language=language, status=409)
        if result.outcome is services.Submit.SUBMITTED:
            return redirect("questionnaire_thanks")
        if result.outcome is services.Submit.INCOMPLETE:
            return redirect(_step_url(token, result.step))
        return _unavailable(request, token)
    followup = _answerable(token)
    if followup is None:
        return _unavailable(request, token)
    answers = _answers(followup)
    levels = _levels(followup)
    missing = first_incomplete_step(answers, levels)
    if missing is not None:
        return redirect(_step_url(token, missing.slug))
    language = _language(request, followup)
    with translation.override(language):
        summary = _summary(answers, levels, token)
    context = {
        "token": token,
        "summary": summary,
        "progress": _progress(len(STEPS) + 1),
        "previous_url": _step_url(token, STEPS[-1].slug),
    }
    return _render(request, "questionnaire/review.html", context, language=language)


@patient_page
def questionnaire_unknown(request: HttpRequest) -> HttpResponse:
    """A path under /q/ that is no questionnaire page (a token with ``%2F`` in it, an extra
    segment): the neutral page, headers and status of any unusable link."""
    return _unavailable(request)


@patient_page
@require_http_methods(["GET"])
def questionnaire_thanks(request: HttpRequest) -> HttpResponse:
    return _render(request, "questionnaire/thanks.html", {}, language=_language(request, None))


def _step_url(token: str, slug: str) -> str:
    if slug == REVIEW:
        return reverse("questionnaire_review", args=[token])
    return reverse("questionnaire_step", args=[token, slug])


def _summary(answers: dict, levels: int, token: str) -> list[dict]:
    fields = all_fields(levels)
    rows = []
    for step in STEPS:
        for name in step.fields:
            field = fields[name]
            value = answers.get(name)
            if value is None:
                shown = None
            elif hasattr(field, "choices"):
                shown = dict(field.choices).get(value)
            else:
                shown = value
            rows.append(
                {
                    "question": field.label,
                    "answer": shown,
                    "change_url": _step_url(token, step.slug) + f"#id_{name}",
                }
            )
    return rows
