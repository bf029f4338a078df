"""Admin for questionnaire responses: staff enter baseline and paper or phone answers."""

from __future__ import annotations

import logging

from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.db import transaction
from django.db.models import Count, Q
from django.shortcuts import redirect
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils.formats import date_format
from django.utils.html import format_html, format_html_join
from django.utils.http import url_has_allowed_host_and_scheme
from django.utils.timezone import localtime
from django.utils.translation import gettext_lazy as _

from outcomes.followups.manual_send import Sent, followup_link_send_by_staff, link_version
from outcomes.followups.sending import (
    contact_attempts_mark_sent,
    contact_attempts_send_again,
)
from outcomes.followups.sweep import followups_ensure
from outcomes.forms import StaffResponseForm
from outcomes.instruments.odi import MAX_MISSING_SECTIONS
from outcomes.models import (
    EQ5D_FIELDS,
    ODI_FIELDS,
    ConsentDocument,
    ContactAttempt,
    FollowUp,
    PatientConsent,
    PhoneCall,
    QuestionnaireResponse,
    Timepoint,
)
from outcomes.quality.saved_anyway import warning_acknowledge
from outcomes.responses import response_delete, response_save_scored
from outcomes.tasks import enqueue_send
from registry.access import may_see_contact
from registry.admin import (
    ProcedureAdmin,
    ReadOnlyAdminMixin,
    ScopedObjectsMixin,
    SiteScopedAdmin,
)
from registry.admin_lists import EstimatedCountPaginator, site_filter
from registry.models import PatientContact, Procedure, Site

logger = logging.getLogger(__name__)


# Filled in by scoring and on saving, shown read-only.
COMPUTED_FIELDS = [
    "eq5d_version",
    "eq5d_value_set",
    "eq5d_index",
    "odi_score",
    "scored_at",
    "entered_by",
    "created_at",
]


TYPED_RULE = _(
    "Paper questionnaire: type the answers as digits in the box, or choose them below. A "
    "filled box wins: its digits replace the choices, and the chosen answers are read back "
    "under it before saving."
)


@admin.register(QuestionnaireResponse)
class QuestionnaireResponseAdmin(SiteScopedAdmin):
    form = StaffResponseForm

    class Media:
        js = ["outcomes/typed_digits.js"]

    list_display = [
        "__str__",
        "answered_on",
        "mode",
        "vas_pain",
        "eq5d_index",
        "eq5d_value_set",
        "odi_score",
    ]
    list_select_related = ["procedure__patient__site"]
    list_filter = [
        site_filter("procedure__patient__site"),
        "timepoint",
        "mode",
    ]
    search_fields = ["procedure__patient__registry_id"]
    autocomplete_fields = ["procedure"]
    readonly_fields = COMPUTED_FIELDS
    fieldsets = [
        (None, {"fields": ["procedure", "timepoint", "mode", "answered_on", "typed_checked"]}),
        (_("Pain"), {"fields": ["vas_pain"]}),
        (
            _("EQ-5D"),
            {
                "fields": ["eq5d_digits", *EQ5D_FIELDS, "eq_vas"],
                "description": TYPED_RULE,
            },
        ),
        (
            _("Oswestry Disability Index v2.1a"),
            {"fields": ["odi_digits", *ODI_FIELDS], "description": TYPED_RULE},
        ),
        (
            _("Warnings"),
            {
                "fields": ["save_anyway", "warning_reason"],
                "description": _(
                    "Answers dated far outside their window are saved only with a reason."
                ),
            },
        ),
        (
            _("Scores (computed)"),
            {"fields": COMPUTED_FIELDS},
        ),
    ]

    def get_form(self, request, obj=None, change=False, **kwargs):
        form_class = super().get_form(request, obj, change, **kwargs)
        levels = self._eq5d_levels(request, obj)

        class Form(form_class):
            def __init__(self, *args, **inner):
                super().__init__(*args, eq5d_levels=levels, **inner)

        return Form

    def _eq5d_levels(self, request, obj) -> int:
        procedure = obj.procedure if obj else None
        procedure_id = request.POST.get("procedure") or request.GET.get("procedure")
        if procedure is None and procedure_id and str(procedure_id).isdigit():
            procedure = (
                Procedure.objects.for_user(request.user)
                .select_related("patient__site")
                .filter(pk=procedure_id)
                .first()
            )
        if procedure is None:
            return 5
        return procedure.patient.site.eq5d_levels

    def save_model(self, request, obj, form, change):
        if not change:
            obj.entered_by = request.user
        response_save_scored(response=obj)
        if form.entry_warnings:
            # Only reached with "save anyway" and a reason (StaffResponseForm.clean).
            warning_acknowledge(
                record=obj,
                site=obj.procedure.patient.site,
                warnings=form.entry_warnings,
                reason=form.cleaned_data["warning_reason"],
                user=request.user,
            )
        if obj.odi_score is None and obj.odi_missing:
            messages.warning(
                request,
                _(
                    "The ODI was not scored: %(missing)d sections are unanswered and at most "
                    "%(max)d may be missing."
                )
                % {"missing": obj.odi_missing, "max": MAX_MISSING_SECTIONS},
            )

    def delete_model(self, request, obj):
        response_delete(response=obj)

    def delete_queryset(self, request, queryset):
        for response in queryset:
            response_delete(response=response)


admin.site.unregister(Procedure)


@admin.register(Procedure)
class ProcedureWithQuestionnairesAdmin(ProcedureAdmin):
    """The procedure page, with its questionnaires and links to enter the missing ones."""

    readonly_fields = ["questionnaires"]

    def get_fieldsets(self, request, obj=None):
        fieldsets = list(super().get_fieldsets(request, obj))
        if obj is not None:
            fieldsets.append((_("Questionnaires"), {"fields": ["questionnaires"]}))
        return fieldsets

    def save_related(self, request, form, formsets, change):
        super().save_related(request, form, formsets, change)
        # The schedule exists as soon as the procedure does (the sweep is the safety net).
        followups_ensure(procedure_ids=[form.instance.pk])

    @admin.display(description=_("questionnaires"))
    def questionnaires(self, obj):
        responses = {response.timepoint: response for response in obj.responses.all()}
        followups = {followup.timepoint: followup for followup in obj.followups.all()}
        rows = []
        for timepoint in Timepoint:
            response = responses.get(timepoint)
            followup = followups.get(timepoint)
            label = timepoint.label
            if followup:
                label = _("%(tp)s (due %(due)s, %(state)s)") % {
                    "tp": timepoint.label,
                    "due": followup.due_date.isoformat(),
                    "state": followup.get_state_display(),
                }
            if response:
                url = reverse("admin:outcomes_questionnaireresponse_change", args=[response.pk])
                text = _("EQ-5D %(eq5d)s, ODI %(odi)s, VAS %(vas)s") % {
                    "eq5d": response.eq5d_index if response.eq5d_index is not None else "–",
                    "odi": response.odi_score if response.odi_score is not None else "–",
                    "vas": response.vas_pain if response.vas_pain is not None else "–",
                }
            else:
                url = (
                    reverse("admin:outcomes_questionnaireresponse_add")
                    + f"?procedure={obj.pk}&timepoint={timepoint.value}"
                )
                text = _("enter answers")
            rows.append((label, url, text))
        return format_html(
            "<ul>{}</ul>",
            format_html_join("", '<li>{}: <a href="{}">{}</a></li>', rows),
        )


class PhoneWorklistFilter(admin.SimpleListFilter):
    title = _("phone worklist")
    parameter_name = "worklist"

    def lookups(self, request, model_admin):
        return [("yes", _("To call")), ("done", _("Called"))]

    def queryset(self, request, queryset):
        on_list = queryset.exclude(on_phone_worklist_since=None)
        if self.value() == "yes":
            return queryset.on_worklist()
        if self.value() == "done":
            return on_list.exclude(phone_outcome="")
        return queryset


class ContactAttemptInline(admin.TabularInline):
    model = ContactAttempt
    extra = 0
    can_delete = False
    fields = ["kind", "channel", "status", "tries", "error", "created_at", "sent_at"]
    ordering = ["created_at"]
    readonly_fields = fields

    def has_add_permission(self, request, obj=None):
        return False


class PhoneCallInline(admin.TabularInline):
    """The follow-up's call log (logged and undone on the due list's phone worklist)."""

    model = PhoneCall
    extra = 0
    can_delete = False
    fields = ["called_at", "caller", "outcome", "call_back_at", "note", "undone_at", "undone_by"]
    readonly_fields = fields
    ordering = ["called_at", "pk"]

    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False


@admin.register(FollowUp)
class FollowUpAdmin(SiteScopedAdmin):
    """Follow-ups, and the site's phone worklist (filter "phone worklist: to call")."""

    list_display = [
        "__str__",
        "site",
        "state",
        "due_date",
        "window_end",
        "invited_on",
        "reminders_sent",
        "phone_outcome",
    ]
    list_select_related = ["procedure__patient__site", "procedure__patient__contact"]
    list_filter = [
        PhoneWorklistFilter,
        site_filter("procedure__patient__site"),
        "state",
        "timepoint",
    ]
    search_fields = ["procedure__patient__registry_id"]
    # Calls are logged one by one on the due list's phone worklist (outcomes.followups.calls).
    actions = ["send_new_link"]
    inlines = [ContactAttemptInline, PhoneCallInline]
    change_form_template = "admin/outcomes/followup/change_form.html"
    fields = [
        "procedure",
        "timepoint",
        "state",
        "due_date",
        "window_start",
        "window_end",
        "invited_on",
        "invitations_sent",
        "reminders_sent",
        "last_contact_on",
        "on_phone_worklist_since",
        "worklist_reason",
        "phone_outcome",
        "phone_note",
        "cancel_reason",
        "completed_at",
        "link_issued_at",
        "link_opened_at",
        "link_started_at",
        "link_submitted_at",
        "scores",
        "questionnaire",
    ]
    # The phone outcome follows the call log (outcomes.followups.calls); the note is free.
    readonly_fields = [f for f in fields if f != "phone_note"]

    def save_model(self, request, obj, form, change):
        # Only the columns this form edits: the chase's own (state, counts, link) belong to
        # the sweep and the services, which may have moved on since the object was loaded; a
        # full save would write back the state it read (a completed follow-up chased again).
        if change:
            if form.changed_data:
                obj.save(update_fields=[*form.changed_data, "updated_at"])
            return
        super().save_model(request, obj, form, change)

    def get_urls(self):
        return [
            path(
                "<path:object_id>/send-link/",
                self.admin_site.admin_view(self.send_link_view),
                name="outcomes_followup_send_link",
            ),
            *super().get_urls(),
        ]

    def send_link_view(self, request, object_id):
        """GET: a confirmation page; POST (from it): a new link, once per confirmation."""
        followup = self.get_object(request, object_id)  # 404 for another site's follow-up
        if not self.has_change_permission(request, followup):
            raise PermissionDenied
        if request.method == "POST" and "version" in request.POST:
            handover = self._send_link(request, followup, request.POST["version"])
            if handover:
                return self._handover_page(request, handover)
            target = request.POST.get("next", "")
            if not url_has_allowed_host_and_scheme(target, allowed_hosts={request.get_host()}):
                target = ""  # another site's address is never followed
            return redirect(target or self._change_url(followup))
        return self._confirm_send(request, [followup], request.GET.get("next", ""))

    def _change_url(self, followup) -> str:
        return reverse("admin:outcomes_followup_change", args=[followup.pk])

    def _confirm_send(self, request, followups, next_url="", *, bulk=False):
        rows = []
        for followup in followups:
            contact = PatientContact.objects.filter(
                patient_id=followup.procedure.patient_id
            ).first()
            emailed = bool(contact and contact.email and contact.consent_to_contact)
            rows.append(
                {"followup": followup, "version": link_version(followup), "emailed": emailed}
            )
        context = {
            **self.admin_site.each_context(request),
            "title": _("Send a new questionnaire link?"),
            "opts": self.model._meta,
            "rows": rows,
            "bulk": bulk,
            "next": next_url if url_has_allowed_host_and_scheme(next_url, None) else "",
        }
        return TemplateResponse(request, "admin/outcomes/followup/send_link_confirm.html", context)

    def _handover_page(self, request, handover: list[tuple]):
        """New links to hand to patients, shown in this one response and stored nowhere (not
        in the messages cookie or session)."""
        context = {
            **self.admin_site.each_context(request),
            "title": _("Questionnaire links to hand over"),
            "opts": self.model._meta,
            "links": handover,
        }
        response = TemplateResponse(request, "admin/outcomes/followup/handover.html", context)
        response["Cache-Control"] = "no-store"
        response["Referrer-Policy"] = "no-referrer"
        return response

    def _send_link(self, request, followup, version: str) -> list[tuple]:
        """Send one confirmed link; returns ``[(followup, url)]`` when staff must hand it over."""
        result = followup_link_send_by_staff(
            followup_id=followup.pk, user=request.user, confirmed_version=version
        )
        if result.outcome is Sent.EMAILED:
            self.message_user(
                request,
                _(
                    "A new link for %(followup)s was emailed to the patient; the old one no "
                    "longer works."
                )
                % {"followup": followup},
            )
        elif result.outcome is Sent.HANDOVER:
            # No email or no consent to email: staff hand the link over (shown this once).
            return [(followup, result.url)]
        elif result.outcome is Sent.DUPLICATE:
            self.message_user(
                request,
                _(
                    "A new link for %(followup)s had already been sent (%(when)s); nothing more "
                    "was sent."
                )
                % {
                    "followup": followup,
                    "when": date_format(localtime(result.issued_at), "DATETIME_FORMAT")
                    if result.issued_at
                    else "–",
                },
                messages.WARNING,
            )
        elif result.outcome is Sent.FAILED:
            self.message_user(
                request,
                _(
                    "The mail server did not take the email for %(followup)s, so no new link was "
                    "made: the patient's previous link still works. Try again later. "
                    "(%(error)s)"
                )
                % {"followup": followup, "error": result.reason},
                messages.ERROR,
            )
        else:
            self.message_user(
                request,
                _("No link sent for %(followup)s: %(reason)s")
                % {"followup": followup, "reason": result.reason},
                messages.ERROR,
            )
        return []

    @admin.action(description=_("Send a new questionnaire link"), permissions=["change"])
    def send_new_link(self, request, queryset):
        followups = list(queryset.select_related("procedure__patient__site"))
        if request.POST.get("confirmed") == "yes":
            handover = []
            for followup in followups:
                version = request.POST.get(f"version-{followup.pk}")
                if version is not None:
                    handover += self._send_link(request, followup, version)
            return self._handover_page(request, handover) if handover else None
        return self._confirm_send(request, followups, bulk=True)

    @admin.display(description=_("answers and scores"))
    def scores(self, obj):
        response = QuestionnaireResponse.objects.filter(
            procedure_id=obj.procedure_id, timepoint=obj.timepoint
        ).first()
        if response is None:
            return _("not yet answered")
        url = reverse("admin:outcomes_questionnaireresponse_change", args=[response.pk])
        return format_html(
            '<a href="{}">{}</a>: EQ-5D index {} ({}), ODI {}%, pain VAS {}',
            url,
            response.get_mode_display(),
            response.eq5d_index if response.eq5d_index is not None else "–",
            response.eq5d_value_set or "–",
            response.odi_score if response.odi_score is not None else "–",
            response.vas_pain if response.vas_pain is not None else "–",
        )

    def has_add_permission(self, request):
        return False

    def has_delete_permission(self, request, obj=None):
        return False

    def get_queryset(self, request):
        queryset = super().get_queryset(request)
        if request.GET.get("worklist"):
            queryset = queryset.annotate(
                call_count=Count("calls", filter=Q(calls__undone_at__isnull=True))
            )
        return queryset

    def get_list_display(self, request):
        columns = list(super().get_list_display(request))
        if request.GET.get("worklist"):
            columns[-1:] = ["worklist_reason", "calls", "phone_outcome"]
            if may_see_contact(request.user):
                # The phone worklist: whom to call, where and in which language.
                columns[1:1] = ["name", "phone", "language"]
        return columns

    @admin.display(description=_("name"))
    def name(self, obj):
        contact = getattr(obj.procedure.patient, "contact", None)
        return (contact.name if contact else "") or "–"

    @admin.display(description=_("calls so far"))
    def calls(self, obj):
        return obj.call_count

    @admin.display(description=_("phone"))
    def phone(self, obj):
        contact = getattr(obj.procedure.patient, "contact", None)
        return (contact.phone_display if contact else "") or _("no phone on file")

    @admin.display(description=_("language"))
    def language(self, obj):
        contact = getattr(obj.procedure.patient, "contact", None)
        return contact.get_preferred_language_display() if contact else "–"

    @admin.display(description=_("site"))
    def site(self, obj):
        return obj.procedure.patient.site.code

    @admin.display(description=_("questionnaire"))
    def questionnaire(self, obj):
        url = (
            reverse("admin:outcomes_questionnaireresponse_add")
            + f"?procedure={obj.procedure_id}&timepoint={obj.timepoint}&mode=phone"
        )
        return format_html('<a href="{}">{}</a>', url, _("enter answers given by phone"))


@admin.register(ContactAttempt)
class ContactAttemptAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    """Every message the chasing sent or tried to send, by state and site: failures and
    unknowns stay visible here, and staff resolve them (send again, or mark sent)."""

    list_display = [
        "__str__",
        "site",
        "followup",
        "kind",
        "channel",
        "status",
        "tries",
        "error",
        "next_try_at",
        "sent_at",
        "delivery_status",
    ]
    list_select_related = ["site", "followup__procedure__patient"]
    list_filter = ["status", "kind", "channel", "delivery_status", site_filter("site")]
    show_full_result_count = False
    paginator = EstimatedCountPaginator
    actions = ["send_again", "mark_sent"]
    readonly_fields = [
        "followup",
        "site",
        "kind",
        "channel",
        "status",
        "digest_date",
        "tries",
        "error",
        "error_code",
        "next_try_at",
        "dispatched_at",
        "claimed_at",
        "send_started_at",
        "created_at",
        "sent_at",
        "provider_id",
        "delivery_status",
        "provider_error_code",
    ]
    # The worker's host and process id (claimed_by) are for the logs, not for staff pages.
    fields = readonly_fields

    def get_queryset(self, request):
        sites = Site.objects.for_user(request.user)
        return super().get_queryset(request).filter(site__in=sites)

    def has_resolve_permission(self, request) -> bool:
        # Whoever chases follow-ups (changes them) resolves their messages.
        return request.user.has_perm("outcomes.change_followup")

    @admin.action(
        description=_("Send again (failed or unknown messages only)"), permissions=["resolve"]
    )
    def send_again(self, request, queryset):
        result = contact_attempts_send_again(
            attempt_ids=list(queryset.values_list("pk", flat=True))
        )
        for attempt_id in result.ids:
            transaction.on_commit(lambda attempt_id=attempt_id: _hint(attempt_id))
        self.message_user(
            request,
            _(
                "%(count)d messages will be sent again; the others were not failed or unknown "
                "and are left as they are."
            )
            % {"count": len(result.ids)},
        )
        if result.waiting:
            self.message_user(
                request,
                _(
                    "%(count)d unknown messages were not sent again: the worker that was sending "
                    "them may still be running. Try again after %(time)s."
                )
                % {
                    "count": result.waiting,
                    "time": date_format(localtime(result.ready_at), "H:i:s"),
                },
                level=messages.WARNING,
            )

    @admin.action(description=_("Mark sent (unknown messages only)"), permissions=["resolve"])
    def mark_sent(self, request, queryset):
        count = contact_attempts_mark_sent(attempt_ids=list(queryset.values_list("pk", flat=True)))
        self.message_user(request, _("%(count)d messages marked sent.") % {"count": count})


def _hint(attempt_id: int) -> None:
    """Queue a send now; if the broker is down, the next sweep dispatches it anyway."""
    try:
        enqueue_send(attempt_id)
    except Exception as exc:  # noqa: BLE001 - the outbox row is the truth
        logger.warning("could not queue contact attempt %s (%s)", attempt_id, type(exc).__name__)


@admin.register(ConsentDocument)
class ConsentDocumentAdmin(ScopedObjectsMixin, admin.ModelAdmin):
    """Consent texts: a new text is a new version (never edited once saved)."""

    list_display = ["site", "language", "version", "title", "effective_from", "requires_reconsent"]
    list_filter = [site_filter("site"), "language"]
    fields = [
        "site",
        "language",
        "version",
        "title",
        "text",
        "asks_contact",
        "effective_from",
        "requires_reconsent",
    ]

    def has_change_permission(self, request, obj=None):
        return False  # the database refuses it too (never_edited)

    def has_delete_permission(self, request, obj=None):
        return False

    def formfield_for_foreignkey(self, db_field, request, **kwargs):
        if db_field.name == "site":
            kwargs["queryset"] = Site.objects.for_user(request.user)
        return super().formfield_for_foreignkey(db_field, request, **kwargs)


@admin.register(PatientConsent)
class PatientConsentAdmin(ScopedObjectsMixin, ReadOnlyAdminMixin, admin.ModelAdmin):
    """Consents as given (link or paper): shown, never edited here."""

    list_display = ["patient", "document", "mode", "given_at", "withdrawn_at"]
    list_select_related = ["patient", "document__site"]
    list_filter = [site_filter("patient__site"), "mode"]
    search_fields = ["patient__registry_id"]
    exclude = ["snapshot_pdf", "scan"]


# Data-quality admin pages (queries to sites, warnings saved anyway) live with their package.
from outcomes.quality import admin as quality_admin  # noqa: E402, F401
