"""Staff entry of questionnaire answers (paper, phone, in clinic)."""

from __future__ import annotations

from django import forms
from django.core.exceptions import ValidationError
from django.utils.formats import date_format
from django.utils.translation import gettext_lazy as _

from outcomes.followups.schedule import FAR_OUTSIDE_WINDOW_DAYS, days_outside_window
from outcomes.models import (
    EQ5D_FIELDS,
    ODI_FIELDS,
    FollowUp,
    PhoneCall,
    QuestionnaireResponse,
    Timepoint,
)
from outcomes.questionnaire import items
from registry import validation
from registry.forms import RegistryModelForm, SaveAnywayFormMixin, save_anyway_given
from registry.locale import DATE_INPUT_FORMATS
from registry.warnings import (
    SAVE_ANYWAY_MESSAGE,
    EntryWarning,
    warnings_not_yet_acknowledged,
    warnings_text,
)

ANSWER_FIELDS = ["vas_pain", *EQ5D_FIELDS, "eq_vas", *ODI_FIELDS]


def answer_field(label, choices) -> forms.TypedChoiceField:
    return forms.TypedChoiceField(
        label=label,
        choices=[("", _("not answered")), *choices],
        coerce=int,
        empty_value=None,
        required=False,
        widget=forms.RadioSelect,
    )


class StaffResponseForm(SaveAnywayFormMixin, RegistryModelForm):
    """One response with the instrument items as labelled choices.

    The EQ-5D items carry the wording of the version the procedure's site uses (3L or 5L);
    the form refuses a partly answered EQ-5D and levels outside the version.
    """

    class Meta:
        model = QuestionnaireResponse
        fields = [
            "procedure",
            "timepoint",
            "mode",
            "answered_on",
            "vas_pain",
            *EQ5D_FIELDS,
            "eq_vas",
            *ODI_FIELDS,
        ]

    def __init__(self, *args, eq5d_levels: int = 5, **kwargs):
        super().__init__(*args, **kwargs)
        self.eq5d_levels = eq5d_levels
        self.fields["mode"].choices = [
            choice
            for choice in self.fields["mode"].choices
            if choice[0] != QuestionnaireResponse.Mode.WEB_LINK
        ]
        # The range is the model's validator, so the form and full_clean() say the same.
        scale = forms.NumberInput(attrs={"min": 0, "max": 100})
        self.fields["vas_pain"] = forms.IntegerField(
            label=items.VAS_QUESTION, required=False, widget=scale
        )
        self.fields["eq_vas"] = forms.IntegerField(
            label=items.EQ_VAS_QUESTION, required=False, widget=scale
        )
        self.entry_warnings: list[EntryWarning] = []
        for name, heading, _three, _five in items.EQ5D_DIMENSIONS:
            self.fields[f"eq5d_{name}"] = answer_field(
                heading, items.eq5d_choices(name, eq5d_levels)
            )
        for name, heading, _answers in items.ODI_SECTIONS:
            self.fields[f"odi_{name}"] = answer_field(heading, items.odi_choices(name))

    def clean(self):
        cleaned = super().clean()
        procedure = cleaned.get("procedure")
        levels = {field: cleaned.get(field) for field in EQ5D_FIELDS}
        answered = [field for field, level in levels.items() if level is not None]
        answer_errors = any(field in self.errors for field in ANSWER_FIELDS)
        if not answer_errors and all(cleaned.get(field) is None for field in ANSWER_FIELDS):
            # A blank response would complete the follow-up and stop the chasing for good.
            raise forms.ValidationError(
                _(
                    "No answer is filled in. Enter the patient's answers (at least one "
                    "question); an empty form is not saved and does not complete the follow-up."
                ),
                code="blank",
            )
        if procedure is None:
            return cleaned
        site = procedure.patient.site
        maximum = site.eq5d_levels
        for field in answered:
            if levels[field] > maximum:
                self.add_error(
                    field,
                    _("%(site)s uses EQ-5D-%(version)s: answer 1–%(max)d.")
                    % {"site": site.code, "version": site.eq5d_version, "max": maximum},
                )
        if answered and len(answered) < len(EQ5D_FIELDS):
            for field in EQ5D_FIELDS:
                if levels[field] is None:
                    self.add_error(
                        field,
                        _("Missing: answer all five EQ-5D questions, or leave all five empty."),
                    )
        self.instance.eq5d_version = site.eq5d_version if answered else ""
        self._warn_far_outside_window(cleaned, procedure)
        return cleaned

    def _post_clean(self) -> None:
        super()._post_clean()
        # After the model's own checks, whose messages (a date before the procedure, before
        # 1900, in the future) say more than this one when they apply.
        procedure = self.cleaned_data.get("procedure")
        if procedure is not None and "answered_on" not in self.errors:
            self._check_window(
                procedure, self.cleaned_data.get("timepoint"), self.cleaned_data.get("answered_on")
            )

    def _check_window(self, procedure, timepoint, answered_on) -> None:
        """Answers given before a timepoint's window opens belong to an earlier timepoint."""
        if not timepoint or answered_on is None:
            return
        followup = FollowUp.objects.filter(procedure=procedure, timepoint=timepoint).first()
        if followup is not None and answered_on < followup.window_start:
            self.add_error(
                "answered_on",
                _(
                    "The %(timepoint)s window opens on %(start)s; answers given on %(date)s "
                    "belong to an earlier timepoint."
                )
                % {
                    "timepoint": followup.get_timepoint_display(),
                    "start": date_format(followup.window_start),
                    "date": date_format(answered_on),
                },
            )

    def _warn_far_outside_window(self, cleaned, procedure) -> None:
        answered_on, timepoint = cleaned.get("answered_on"), cleaned.get("timepoint")
        if not (answered_on and timepoint) or self.errors:
            return
        days = days_outside_window(timepoint, procedure.date, answered_on)
        if days < FAR_OUTSIDE_WINDOW_DAYS:
            return
        warnings = [
            EntryWarning(
                "response_far_outside_window",
                str(
                    _(
                        "The answers are dated %(days)d days outside the %(timepoint)s window "
                        "of this procedure."
                    )
                    % {"days": days, "timepoint": Timepoint(timepoint).label}
                ),
            )
        ]
        instance = self.instance if self.instance.pk else None
        self.entry_warnings = warnings_not_yet_acknowledged(instance, warnings)
        if self.entry_warnings and not save_anyway_given(self.data):
            raise ValidationError(
                SAVE_ANYWAY_MESSAGE % {"warnings": warnings_text(self.entry_warnings)},
                code="needs_save_anyway",
            )


CALL_BACK_FORMATS = [f"{date} {time}" for date in DATE_INPUT_FORMATS for time in ("%H:%M", "%H.%M")]


class PhoneCallForm(forms.Form):
    """One call of the phone worklist (outcomes.followups.calls.phone_call_record)."""

    outcome = forms.ChoiceField(label=_("Outcome of the call"), choices=PhoneCall.Outcome.choices)
    call_back_at = forms.DateTimeField(
        label=_("Call back at"),
        required=False,
        input_formats=CALL_BACK_FORMATS,
        help_text=_("Only for “call back at”: day and time, e.g. 28-11-2026 14:30"),
        error_messages={
            "invalid": _("Enter the day and time to call back, e.g. 28-11-2026 14:30.")
        },
    )
    note = forms.CharField(
        label=_("Note"),
        required=False,
        max_length=300,
        validators=[validation.validate_no_cpr],
    )
