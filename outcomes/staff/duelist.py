"""The due list: windows opening or closing in the coming weeks, and the phone worklist with
phone number, language, attempt history and the outcome buttons, with a print view."""

from __future__ import annotations

import datetime
from zoneinfo import ZoneInfo

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied, ValidationError
from django.core.paginator import Paginator
from django.db.models import F, Func, IntegerField, Prefetch, Subquery
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone
from django.utils.http import urlencode
from django.utils.translation import gettext_lazy as _

from outcomes.followups.calls import phone_call_record, phone_call_undo
from outcomes.forms import PhoneCallForm
from outcomes.models import ContactAttempt, FollowUp, PhoneCall
from registry.access import may_see_contact
from registry.models import Site

PAGE_SIZE = 50  # rows of the section shown; its count is of every row the filters select
TAKEN_OFF_LIMIT = 200  # calls of today that took a patient off the list (undo needs them)
SECTIONS = ("worklist", "opening", "closing")


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
    """The phone worklist (``FollowUp.objects.on_worklist``) with each follow-up's call log."""
    followups = FollowUp.objects.for_user(user).on_worklist()
    if site:
        followups = followups.filter(procedure__patient__site__code=site)
    return (
        followups.select_related("procedure__patient__site", "procedure__patient__contact")
        .prefetch_related(
            Prefetch(
                "attempts",
                queryset=ContactAttempt.objects.select_related("sent_by").order_by("created_at"),
            ),
            Prefetch(
                "calls",
                queryset=PhoneCall.objects.select_related("caller", "undone_by").order_by(
                    "called_at", "pk"
                ),
            ),
        )
        .order_by("window_end", "pk")
    )


def due_list(request: HttpRequest) -> HttpResponse:
    """One section at a time (the phone worklist, windows opening, windows closing), a page of
    ``PAGE_SIZE`` rows, with every section's count on its tab: the page's cost grows with the
    rows it shows, not with the registry (issue 32: 205 kB and 4-7 s for 12 weeks of every
    site). Seven queries on the worklist: session, user, sites with the three counts, the
    page, its messages, its calls and the calls of today that took patients off it."""
    user = request.user
    if not user.has_perm("outcomes.view_followup"):
        raise PermissionDenied
    failed = None
    if request.method == "POST":
        response, failed = _post(request)
        if response is not None:
            return response
    can_contact = may_see_contact(user)
    sections = SECTIONS if can_contact else SECTIONS[1:]
    section = request.GET.get("section")
    if section not in sections:
        section = sections[0]
    # The filters are read before the form is built: its site choices come with the counts.
    # A site code not among the user's sites selects nothing (and the form says so).
    site = request.GET.get("site", "")
    weeks = _weeks(request.GET.get("weeks", ""))
    today = timezone.localdate()
    until = today + datetime.timedelta(weeks=weeks)
    scoped = FollowUp.objects.for_user(user)
    if site:
        scoped = scoped.filter(procedure__patient__site__code=site)
    pending = scoped.exclude(state__in=FollowUp.FINAL_STATES)
    selected = {
        "opening": pending.filter(window_start__gte=today, window_start__lte=until).order_by(
            "window_start", "pk"
        ),
        "closing": pending.filter(window_end__gte=today, window_end__lte=until).order_by(
            "window_end", "pk"
        ),
    }
    if can_contact:
        selected["worklist"] = scoped.on_worklist()
    sites, counts = _sites_and_counts(user, selected)
    form = DueFilter(request.GET or None, sites=sites)
    form.is_valid()  # shows a refused site or period beside its field
    if section == "worklist":
        rows_query = worklist_followups(user, site)
    else:
        rows_query = selected[section].select_related("procedure__patient__site")
        if can_contact:
            rows_query = rows_query.select_related("procedure__patient__contact")
    paginator = Paginator(rows_query, PAGE_SIZE)
    paginator.count = counts[section]  # counted with the sites: no COUNT of its own
    page = paginator.get_page(request.GET.get("page"))
    rows = list(page.object_list) if counts[section] else []
    worklist, taken_off = [], []
    if section == "worklist":
        worklist = rows
        site_now = timezone.localtime()
        for followup in worklist:
            followup.phone_answers_url = phone_answers_url(followup, request.get_full_path())
            calls = list(followup.calls.all())
            followup.call_count = sum(call.undone_at is None for call in calls)
            followup.call_rows = [
                (call, call.undone_at is None and _same_site_day(call, followup, site_now))
                for call in calls
            ]
            if failed is not None and failed.prefix == f"call-{followup.pk}":
                followup.call_form = failed
            else:
                followup.call_form = PhoneCallForm(prefix=f"call-{followup.pk}")
        # Calls of today that took a patient off the list, so a mistaken one can be undone.
        day_start = datetime.datetime.combine(
            today, datetime.time(), tzinfo=timezone.get_current_timezone()
        )
        taken = PhoneCall.objects.for_user(user).standing()
        if site:
            taken = taken.filter(followup__procedure__patient__site__code=site)
        taken_off = list(
            taken.filter(outcome__in=list(PhoneCall.TAKES_OFF_LIST), called_at__gte=day_start)
            .select_related("caller", "followup__procedure__patient__contact")
            .order_by("called_at", "pk")[:TAKEN_OFF_LIMIT]
        )
    query = request.GET.copy()
    query.pop("page", None)
    query.pop("print", None)
    query["section"] = section
    filters_only = request.GET.copy()
    for key in ("page", "print", "section"):
        filters_only.pop(key, None)
    context = {
        **admin.site.each_context(request),
        "title": _("Due list and phone worklist"),
        "taken_off": taken_off,
        "form": form,
        "today": today,
        "until": until,
        "section": section,
        "tabs": [(name, SECTION_LABELS[name], counts[name]) for name in sections],
        "counts": counts,
        "page": page,
        "query": query.urlencode(),
        "filters_query": filters_only.urlencode(),
        "opening": rows if section == "opening" else [],
        "closing": rows if section == "closing" else [],
        "worklist": worklist,
        "can_contact": can_contact,
        "can_change": user.has_perm("outcomes.change_followup"),
        "call_outcomes": PhoneCall.Outcome.choices,
        "time_zone": timezone.get_current_timezone_name(),
    }
    template = (
        "admin/staff/worklist_print.html"
        if request.GET.get("print") and section == "worklist"
        else "admin/staff/due_list.html"
    )
    return render(request, template, context)


SECTION_LABELS = {
    "worklist": _("Phone worklist"),
    "opening": _("Windows opening"),
    "closing": _("Windows closing"),
}


def _weeks(value: str) -> int:
    choices = dict(DueFilter.base_fields["weeks"].choices)
    return int(value) if value.isdigit() and int(value) in choices else 4


def _sites_and_counts(user, selected: dict) -> tuple[list[Site], dict[str, int]]:
    """The user's sites (the filter's choices) and each section's row count, in one query:
    each count is a scalar subquery, planned on its own with its own index, computed once
    whatever the number of sites. These are the counts the tabs show and the pages page
    through, from the same querysets as the rows."""
    counts = {
        name: Subquery(
            queryset.order_by().annotate(n=Func(F("pk"), function="COUNT")).values("n"),
            output_field=IntegerField(),
        )
        for name, queryset in selected.items()
    }
    sites = list(
        Site.objects.for_user(user)
        .order_by("code")
        .annotate(**{f"n_{k}": v for k, v in counts.items()})
    )
    totals = {name: getattr(sites[0], f"n_{name}") if sites else 0 for name in selected}
    return sites, totals


def phone_answers_url(followup: FollowUp, back: str) -> str:
    """The response entry for answers given by phone: mode, procedure and timepoint filled
    in; saving the answers completes the follow-up."""
    return (
        reverse("admin:outcomes_questionnaireresponse_add")
        + "?"
        + urlencode(
            {
                "procedure": followup.procedure_id,
                "timepoint": followup.timepoint,
                "mode": "phone",
                "next": back,
            }
        )
    )


def _same_site_day(call: PhoneCall, followup: FollowUp, now: datetime.datetime) -> bool:
    zone = ZoneInfo(followup.procedure.patient.site.time_zone)
    return call.called_at.astimezone(zone).date() == now.astimezone(zone).date()


def _post(request: HttpRequest) -> tuple[HttpResponse | None, PhoneCallForm | None]:
    """Log a call ("followup") or undo one ("undo"); a refused call comes back as its bound
    form, so the page shows the error beside the fields with the input kept."""
    if not request.user.has_perm("outcomes.change_followup"):
        raise PermissionDenied
    back = request.get_full_path()
    if "undo" in request.POST:
        try:
            call = phone_call_undo(call_id=_int(request.POST["undo"]), user=request.user)
        except ValidationError as error:
            messages.error(request, " ".join(error.messages))
        else:
            messages.success(
                request,
                _("Call undone: %(followup)s, %(outcome)s.")
                % {"followup": call.followup, "outcome": call.get_outcome_display()},
            )
        return redirect(back), None
    followup_id = _int(request.POST.get("followup", ""))
    form = PhoneCallForm(request.POST, prefix=f"call-{followup_id}")
    if not form.is_valid():
        messages.error(request, _("The call was not logged: see the errors in its row."))
        return None, form
    try:
        call = phone_call_record(
            followup_id=followup_id,
            user=request.user,
            outcome=form.cleaned_data["outcome"],
            note=form.cleaned_data["note"],
            call_back_at=form.cleaned_data["call_back_at"],
        )
    except ValidationError as error:
        if hasattr(error, "error_dict"):
            for field, errors in error.message_dict.items():
                form.add_error(field if field in form.fields else None, errors)
            messages.error(request, _("The call was not logged: see the errors in its row."))
            return None, form
        messages.error(request, " ".join(error.messages))
        return redirect(back), None
    messages.success(
        request,
        _("Call logged: %(followup)s, %(outcome)s.")
        % {"followup": call.followup, "outcome": call.get_outcome_display()},
    )
    if call.outcome == PhoneCall.Outcome.ANSWERED:
        # The answers are entered now; the follow-up completes when they are saved.
        return redirect(phone_answers_url(call.followup, back)), None
    return redirect(back), None


def _int(value: str) -> int:
    return int(value) if str(value).isdigit() else 0
