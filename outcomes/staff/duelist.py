"""The due list: windows opening or closing in the coming weeks, and the phone worklist with
phone number, language, attempt history and the outcome buttons, with a print view."""

from __future__ import annotations

import datetime

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.db.models import Prefetch
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone
from django.utils.http import urlencode
from django.utils.translation import gettext_lazy as _

from outcomes.followups.services import followups_record_phone_outcome
from outcomes.models import ContactAttempt, FollowUp
from registry.models import Site

LIST_LIMIT = 500  # rows per section; the filters narrow it down


class DueFilter(forms.Form):
    site = forms.ChoiceField(label=_("Site"), required=False)
    weeks = forms.TypedChoiceField(
        label=_("Coming weeks"),
        coerce=int,
        required=False,
        empty_value=4,
        choices=[(n, n) for n in (1, 2, 4, 8, 12)],
        initial=4,
    )

    def __init__(self, *args, sites, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["site"].choices = [("", _("All my sites"))] + [
            (site.code, f"{site.code} – {site.name}") for site in sites
        ]


def worklist_followups(user, site: str = ""):
    """Follow-ups waiting for a call, of patients who agreed to be contacted."""
    followups = (
        FollowUp.objects.for_user(user)
        .filter(
            on_phone_worklist_since__isnull=False,
            phone_outcome="",
            procedure__patient__contact__consent_to_contact=True,
        )
        .exclude(state__in=FollowUp.FINAL_STATES)
    )
    if site:
        followups = followups.filter(procedure__patient__site__code=site)
    return (
        followups.select_related("procedure__patient__site", "procedure__patient__contact")
        .prefetch_related(
            Prefetch(
                "attempts",
                queryset=ContactAttempt.objects.select_related("sent_by").order_by("created_at"),
            )
        )
        .order_by("window_end", "pk")
    )


def due_list(request: HttpRequest) -> HttpResponse:
    user = request.user
    if not user.has_perm("outcomes.view_followup"):
        raise PermissionDenied
    if request.method == "POST":
        return _record_outcome(request)
    sites = list(Site.objects.for_user(user).order_by("code"))
    form = DueFilter(request.GET or None, sites=sites)
    filters = form.cleaned_data if form.is_valid() else {}
    site = filters.get("site", "")
    weeks = filters.get("weeks") or 4
    today = timezone.localdate()
    until = today + datetime.timedelta(weeks=weeks)
    pending = (
        FollowUp.objects.for_user(user)
        .exclude(state__in=FollowUp.FINAL_STATES)
        .select_related("procedure__patient__site")
    )
    if site:
        pending = pending.filter(procedure__patient__site__code=site)
    opening = list(
        pending.filter(window_start__gte=today, window_start__lte=until).order_by(
            "window_start", "pk"
        )[:LIST_LIMIT]
    )
    closing = list(
        pending.filter(window_end__gte=today, window_end__lte=until).order_by("window_end", "pk")[
            :LIST_LIMIT
        ]
    )
    can_contact = user.has_perm("registry.view_patientcontact")
    worklist = list(worklist_followups(user, site)[:LIST_LIMIT]) if can_contact else []
    for followup in worklist:
        followup.phone_answers_url = (
            reverse("admin:outcomes_questionnaireresponse_add")
            + "?"
            + urlencode(
                {
                    "procedure": followup.procedure_id,
                    "timepoint": followup.timepoint,
                    "mode": "phone",
                    "next": request.get_full_path(),
                }
            )
        )
    context = {
        **admin.site.each_context(request),
        "title": _("Due list and phone worklist"),
        "form": form,
        "today": today,
        "until": until,
        "opening": opening,
        "closing": closing,
        "worklist": worklist,
        "can_contact": can_contact,
        "can_change": user.has_perm("outcomes.change_followup"),
        "outcomes": FollowUp.PhoneOutcome.choices,
        "limit": LIST_LIMIT,
        "time_zone": timezone.get_current_timezone_name(),
    }
    template = (
        "admin/staff/worklist_print.html"
        if request.GET.get("print")
        else "admin/staff/due_list.html"
    )
    return render(request, template, context)


def _record_outcome(request: HttpRequest) -> HttpResponse:
    if not request.user.has_perm("outcomes.change_followup"):
        raise PermissionDenied
    outcome = request.POST.get("outcome")
    if outcome not in FollowUp.PhoneOutcome.values:
        raise PermissionDenied
    followups = FollowUp.objects.for_user(request.user).filter(pk=request.POST.get("followup") or 0)
    followup = followups.select_related("procedure__patient").first()
    if followup is None or not followups_record_phone_outcome(followups=followups, outcome=outcome):
        messages.error(request, _("That follow-up is not on your phone worklist."))
    else:
        messages.success(
            request,
            _("%(followup)s: %(outcome)s recorded.")
            % {"followup": followup, "outcome": FollowUp.PhoneOutcome(outcome).label},
        )
    return redirect(request.get_full_path())
