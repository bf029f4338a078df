"""Admin for questionnaire responses: staff enter baseline and paper or phone answers."""

from __future__ import annotations

from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.shortcuts import redirect
from django.urls import path, reverse
from django.utils.html import format_html, format_html_join
from django.utils.translation import gettext_lazy as _

from outcomes.followups.sending import LinkNotIssued, followup_link_resend
from outcomes.followups.services import followups_record_phone_outcome
from outcomes.followups.sweep import followups_ensure
from outcomes.forms import StaffResponseForm
from outcomes.instruments.odi import MAX_MISSING_SECTIONS
from outcomes.models import (
    EQ5D_FIELDS,
    ODI_FIELDS,
    ContactAttempt,
    FollowUp,
    QuestionnaireResponse,
    Timepoint,
)
from outcomes.responses import response_save_scored
from registry.admin import ProcedureAdmin, SiteScopedAdmin
from registry.models import Procedure, Site
from registry.warnings import warning_acknowledge


@admin.register(QuestionnaireResponse)
class QuestionnaireResponseAdmin(SiteScopedAdmin):
    form = StaffResponseForm
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
        ("procedure__patient__site", admin.RelatedOnlyFieldListFilter),
        "timepoint",
        "mode",
    ]
    search_fields = ["procedure__patient__registry_id"]
    autocomplete_fields = ["procedure"]
    readonly_fields = [
        "eq5d_version",
        "eq5d_value_set",
        "eq5d_index",
        "odi_score",
        "scored_at",
        "entered_by",
        "created_at",
    ]
    fieldsets = [
        (None, {"fields": ["procedure", "timepoint", "mode", "answered_on"]}),
        (_("Pain"), {"fields": ["vas_pain"]}),
        (_("EQ-5D"), {"fields": [*EQ5D_FIELDS, "eq_vas"]}),
        (_("Oswestry Disability Index v2.1a"), {"fields": ODI_FIELDS}),
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
            {
                "fields": [
                    "eq5d_version",
                    "eq5d_value_set",
                    "eq5d_index",
                    "odi_score",
                    "scored_at",
                    "entered_by",
                    "created_at",
                ]
            },
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
        return int(procedure.patient.site.eq5d_version[0])

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
            return on_list.filter(phone_outcome="").exclude(state__in=FollowUp.FINAL_STATES)
        if self.value() == "done":
            return on_list.exclude(phone_outcome="")
        return queryset


class ContactAttemptInline(admin.TabularInline):
    model = ContactAttempt
    extra = 0
    can_delete = False
    fields = ["kind", "channel", "status", "tries", "error", "created_at", "sent_at"]
    readonly_fields = fields

    def has_add_permission(self, request, obj=None):
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
    list_select_related = ["procedure__patient__site"]
    list_filter = [
        PhoneWorklistFilter,
        ("procedure__patient__site", admin.RelatedOnlyFieldListFilter),
        "state",
        "timepoint",
    ]
    search_fields = ["procedure__patient__registry_id"]
    actions = ["mark_reached", "mark_unreachable", "mark_answered_by_phone", "send_new_link"]
    inlines = [ContactAttemptInline]
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
    readonly_fields = [f for f in fields if f not in ("phone_outcome", "phone_note")]

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
        """POST only: a new link for this follow-up (the previous one stops working)."""
        followup = self.get_object(request, object_id)  # 404 for another site's follow-up
        if request.method != "POST" or not self.has_change_permission(request, followup):
            raise PermissionDenied
        self._send_link(request, followup)
        return redirect("admin:outcomes_followup_change", followup.pk)

    def _send_link(self, request, followup) -> None:
        try:
            issued = followup_link_resend(followup_id=followup.pk)
        except LinkNotIssued as refusal:
            self.message_user(
                request,
                _("No link sent for %(followup)s: %(reason)s")
                % {"followup": followup, "reason": refusal},
                messages.ERROR,
            )
            return
        if issued.emailed_to:
            self.message_user(
                request,
                _(
                    "A new link for %(followup)s was emailed to the patient; the old one no "
                    "longer works."
                )
                % {"followup": followup},
            )
        else:
            # No email or no consent to email: staff hand the link over (shown this once).
            self.message_user(
                request,
                _(
                    "No email on file (or no consent to email). Give the patient this new link; "
                    "the old one no longer works: %(url)s"
                )
                % {"url": issued.url},
                messages.WARNING,
            )

    @admin.action(description=_("Send a new questionnaire link"), permissions=["change"])
    def send_new_link(self, request, queryset):
        for followup in queryset.select_related("procedure__patient"):
            self._send_link(request, followup)

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

    def _record(self, request, queryset, outcome):
        count = followups_record_phone_outcome(followups=queryset, outcome=outcome)
        self.message_user(request, _("%(count)d follow-ups updated.") % {"count": count})

    @admin.action(description=_("Phone: reached"), permissions=["change"])
    def mark_reached(self, request, queryset):
        self._record(request, queryset, FollowUp.PhoneOutcome.REACHED)

    @admin.action(description=_("Phone: unreachable"), permissions=["change"])
    def mark_unreachable(self, request, queryset):
        self._record(request, queryset, FollowUp.PhoneOutcome.UNREACHABLE)

    @admin.action(description=_("Phone: answered by phone"), permissions=["change"])
    def mark_answered_by_phone(self, request, queryset):
        self._record(request, queryset, FollowUp.PhoneOutcome.ANSWERED_BY_PHONE)


@admin.register(ContactAttempt)
class ContactAttemptAdmin(admin.ModelAdmin):
    """Every message the chasing sent or tried to send; failures stay visible here."""

    list_display = ["__str__", "site", "followup", "kind", "status", "tries", "error", "sent_at"]
    list_select_related = ["site", "followup__procedure__patient"]
    list_filter = ["status", "kind", ("site", admin.RelatedOnlyFieldListFilter)]
    readonly_fields = [
        "followup",
        "site",
        "kind",
        "channel",
        "status",
        "digest_date",
        "tries",
        "error",
        "created_at",
        "sent_at",
    ]

    def get_queryset(self, request):
        sites = Site.objects.for_user(request.user)
        return super().get_queryset(request).filter(site__in=sites)

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False
