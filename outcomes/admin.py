"""Admin for questionnaire responses: staff enter baseline and paper or phone answers."""

from __future__ import annotations

from django.contrib import admin, messages
from django.urls import reverse
from django.utils.html import format_html, format_html_join
from django.utils.translation import gettext_lazy as _

from outcomes.forms import StaffResponseForm
from outcomes.instruments.odi import MAX_MISSING_SECTIONS
from outcomes.models import EQ5D_FIELDS, ODI_FIELDS, QuestionnaireResponse, Timepoint
from outcomes.services import response_save_scored
from registry.admin import ProcedureAdmin, SiteScopedAdmin
from registry.models import Procedure


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

    @admin.display(description=_("questionnaires"))
    def questionnaires(self, obj):
        responses = {response.timepoint: response for response in obj.responses.all()}
        rows = []
        for timepoint in Timepoint:
            response = responses.get(timepoint)
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
            rows.append((timepoint.label, url, text))
        return format_html(
            "<ul>{}</ul>",
            format_html_join("", '<li>{}: <a href="{}">{}</a></li>', rows),
        )
