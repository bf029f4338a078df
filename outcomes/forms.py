"""Staff entry of questionnaire answers (paper, phone, in clinic)."""

from __future__ import annotations

from django import forms
from django.core.exceptions import ValidationError
from django.utils.formats import date_format
from django.utils.html import format_html, format_html_join
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
from outcomes.typed_digits import digits_normalise, digits_parse, eq5d_scale, odi_scale
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

# The typed-digit boxes (outcomes.typed_digits) and the items each one fills, in order.
TYPED_BOXES = {"eq5d_digits": EQ5D_FIELDS, "odi_digits": ODI_FIELDS}
TYPED_CHECKED = "typed_checked"
TYPED_PREVIEW_MESSAGE = _(
    "Check the answers read back under the typed digits, then save again. Nothing is saved yet."
)


def typed_signature(boxes: dict[str, str]) -> str:
    """What the nurse was shown read back: both boxes as typed (without spaces)."""
    return ";".join(f"{name}={boxes.get(name, '')}" for name in TYPED_BOXES)


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

    eq5d_digits = forms.CharField(
        label=_("EQ-5D typed as digits"),
        required=False,
        max_length=40,
        widget=forms.TextInput(attrs={"size": 12, "autocomplete": "off", "inputmode": "numeric"}),
        help_text=_(
            "Type the five answers in the printed order, one digit each 1–%(max)d, e.g. 11223. "
            "A filled box replaces the choices below."
        ),
    )
    odi_digits = forms.CharField(
        label=_("ODI typed as digits"),
        required=False,
        max_length=40,
        widget=forms.TextInput(attrs={"size": 16, "autocomplete": "off", "data-missing-mark": "-"}),
        help_text=_(
            "Type the ten answers in the printed order, one digit each 0–5, and - for an "
            "unanswered section, e.g. 3122121-22. A filled box replaces the choices below."
        ),
    )
    typed_checked = forms.CharField(required=False, widget=forms.HiddenInput)

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
        self._typed_boxes_add(eq5d_levels)

    def _typed_boxes_add(self, eq5d_levels: int) -> None:
        """One box per instrument for the digits of a paper questionnaire.

        The rule, stated on the page: a filled box wins, its digits replace the choices of
        its items (with JavaScript the choices follow the box as it is typed, and a choice
        clicked afterwards rewrites its digit, so the two agree). A box is refused beside it
        when its length or a digit is wrong, and then no choice is changed. The texts of the
        chosen answers are shown read back under the box, and a save with typed digits the
        nurse has not seen read back is refused once (``typed_checked`` carries what was shown;
        the JavaScript shows them as typed and fills it in).
        """
        self.fields["eq5d_digits"].help_text = self.fields["eq5d_digits"].help_text % {
            "max": eq5d_levels
        }
        self.typed_values: dict[str, tuple[int | None, ...]] = {}
        self.typed_errors: dict[str, ValidationError] = {}
        if not self.is_bound:
            return
        scales = {"eq5d_digits": eq5d_scale(eq5d_levels), "odi_digits": odi_scale()}
        data = self.data.copy()
        for box, fields in TYPED_BOXES.items():
            text = digits_normalise(str(data.get(self.add_prefix(box), "")))
            if not text:
                continue
            try:
                values = digits_parse(text, scales[box])
            except ValidationError as error:
                self.typed_errors[box] = error
                continue
            self.typed_values[box] = values
            for field, value in zip(fields, values, strict=True):
                data[self.add_prefix(field)] = "" if value is None else str(value)
            self.fields[box].help_text = format_html(
                '{}<ul class="typed-readback">{}</ul>',
                self.fields[box].help_text,
                format_html_join(
                    "",
                    "<li>{}: {}</li>",
                    (
                        (self.fields[field].label, self._answer_text(field, value))
                        for field, value in zip(fields, values, strict=True)
                    ),
                ),
            )
        self.data = data

    def _answer_text(self, field: str, value: int | None) -> str:
        if value is None:
            return str(_("not answered"))
        return f"{value} – {dict(self.fields[field].choices)[value]}"

    def clean_eq5d_digits(self) -> str:
        return self._typed_clean("eq5d_digits")

    def clean_odi_digits(self) -> str:
        return self._typed_clean("odi_digits")

    def _typed_clean(self, box: str) -> str:
        if box in self.typed_errors:
            raise self.typed_errors[box]
        return digits_normalise(self.cleaned_data.get(box, ""))

    def clean(self):
        cleaned = super().clean()
        self._typed_preview(cleaned)
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
                typed = "eq5d_digits" in self.typed_values
                self.add_error(
                    # The box typed it, so the box says it (once).
                    "eq5d_digits" if typed else field,
                    _("%(site)s uses EQ-5D-%(version)s: answer 1–%(max)d.")
                    % {"site": site.code, "version": site.eq5d_version, "max": maximum},
                )
                if typed:
                    break
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

    def _typed_preview(self, cleaned) -> None:
        """Refuse once a save whose typed digits were not yet read back to the nurse."""
        if not self.typed_values:
            return
        signature = typed_signature({box: cleaned.get(box, "") for box in self.typed_values})
        shown = self.data.get(self.add_prefix(TYPED_CHECKED), "")
        # The page re-rendered now shows them read back: a save of the same digits then goes.
        self.data[self.add_prefix(TYPED_CHECKED)] = signature
        if shown != signature:
            self.add_error(None, ValidationError(TYPED_PREVIEW_MESSAGE, code="typed_preview"))

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
