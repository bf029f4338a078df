"""Admin forms of the registry core: the model's own refusal messages at the form door, strict
inline formsets, the "save anyway" step for warnings that need a reason, and choices that
depend on the record being entered (a complication's procedure and level belong to its
patient)."""

from __future__ import annotations

from django import forms
from django.core.exceptions import FieldDoesNotExist, ValidationError
from django.db import models
from django.forms.formsets import INITIAL_FORM_COUNT, TOTAL_FORM_COUNT
from django.forms.models import BaseInlineFormSet
from django.utils.formats import date_format
from django.utils.translation import gettext_lazy as _

from registry.models import Complication, Procedure, TreatedLevel
from registry.validation import validate_no_cpr
from registry.warnings import (
    REASON_NEEDED_MESSAGE,
    SAVE_ANYWAY_MESSAGE,
    EntryWarning,
    procedure_warnings,
    warnings_not_yet_acknowledged,
    warnings_text,
)

MANAGEMENT_MESSAGE = _(
    "The list of %(items)s was sent incomplete or altered. Reload the page and enter it again; "
    "nothing was saved."
)
AT_LEAST_ONE_LEVEL_MESSAGE = _(
    "Record at least one treated level: a procedure cannot be saved without its vertebrae."
)
DUPLICATE_LEVEL_MESSAGE = _("%(level)s is entered twice: record each vertebra once per procedure.")


class RegistryModelForm(forms.ModelForm):
    """A model form that shows the model's own message for a value outside its choices, so
    the admin and ``full_clean()`` (imports, commands) refuse with the same words."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        default = models.Field.default_error_messages["invalid_choice"]
        for name, field in self.fields.items():
            try:
                model_field = self._meta.model._meta.get_field(name)
            except FieldDoesNotExist:
                continue
            message = getattr(model_field, "error_messages", {}).get("invalid_choice")
            if message and message != default and "invalid_choice" in field.error_messages:
                field.error_messages["invalid_choice"] = message


class StrictInlineFormSet(BaseInlineFormSet):
    """Refuses management data that no browser sends: negative form counts, or more
    initial forms than forms (Django would silently treat them as zero forms)."""

    items = _("rows")

    def clean(self):
        data = self.management_form.cleaned_data
        total, initial = data.get(TOTAL_FORM_COUNT), data.get(INITIAL_FORM_COUNT)
        if total is None or initial is None or total < 0 or initial < 0 or initial > total:
            raise ValidationError(
                MANAGEMENT_MESSAGE % {"items": self.items}, code="bad_management_form"
            )
        super().clean()

    def live_forms(self) -> list:
        """The forms that will be saved: filled in and not marked for deletion."""
        return [
            form
            for form in self.forms
            if getattr(form, "cleaned_data", None)
            and not (self.can_delete and self._should_delete_form(form))
        ]


class TreatedLevelFormSet(StrictInlineFormSet):
    """A procedure's levels: at least one, each vertebra once, and the warnings that need
    "save anyway" with a reason (the fields are on the procedure form)."""

    items = _("treated levels")

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.entry_warnings: list[EntryWarning] = []

    def clean(self):
        data = self.management_form.cleaned_data
        if self.management_form.is_valid() and (data.get(TOTAL_FORM_COUNT) or 0) >= 0:
            seen = set()
            for form in self.live_forms():
                level = form.cleaned_data.get("level")
                if level in seen:
                    label = dict(form.fields["level"].choices).get(level, level)
                    raise ValidationError(
                        DUPLICATE_LEVEL_MESSAGE % {"level": label}, code="duplicate_level"
                    )
                seen.add(level)
        super().clean()
        live = self.live_forms()
        if not live:
            raise ValidationError(AT_LEAST_ONE_LEVEL_MESSAGE, code="no_level")
        procedure = self.instance
        self.entry_warnings = warnings_not_yet_acknowledged(
            procedure if procedure.pk else None,
            procedure_warnings(
                level_count=len(live),
                absolute_contraindications=list(procedure.absolute_contraindications or []),
                levels=[
                    (form.cleaned_data.get("level"), form.cleaned_data.get("cement_volume_ml"))
                    for form in live
                ],
            ),
        )
        if self.entry_warnings and not save_anyway_given(self.data):
            raise ValidationError(
                SAVE_ANYWAY_MESSAGE % {"warnings": warnings_text(self.entry_warnings)},
                code="needs_save_anyway",
            )


class PatientContactFormSet(StrictInlineFormSet):
    """The patient's contact details, and the "likely duplicate" warning that needs "save
    anyway" with a reason (registry.duplicates; the fields are on the patient form)."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.entry_warnings: list[EntryWarning] = []

    def clean(self):
        super().clean()
        from registry.duplicates import duplicate_warnings

        patient = self.instance
        live = self.live_forms()
        if not live or not patient.site_id or not patient.date_of_birth:
            return
        contact = live[0].cleaned_data
        self.entry_warnings = warnings_not_yet_acknowledged(
            patient if patient.pk else None,
            duplicate_warnings(
                site_id=patient.site_id,
                date_of_birth=patient.date_of_birth,
                name=contact.get("name") or "",
                email=contact.get("email") or "",
                phone=contact.get("phone") or "",
                exclude_pk=patient.pk,
            ),
        )
        if self.entry_warnings and not save_anyway_given(self.data):
            raise ValidationError(
                SAVE_ANYWAY_MESSAGE % {"warnings": warnings_text(self.entry_warnings)},
                code="needs_save_anyway",
            )


def save_anyway_given(data) -> bool:
    return bool(data.get("save_anyway")) and bool((data.get("warning_reason") or "").strip())


class SaveAnywayFormMixin(forms.Form):
    """Two fields for warnings that need a reason: "save anyway" and the reason."""

    save_anyway = forms.BooleanField(
        label=_("Save anyway"),
        required=False,
        help_text=_("Tick only after checking the values the warning names."),
    )
    warning_reason = forms.CharField(
        label=_("Reason for saving anyway"),
        required=False,
        max_length=1000,
        widget=forms.Textarea(attrs={"rows": 2}),
        validators=[validate_no_cpr],
    )

    def clean(self):
        cleaned = super().clean()
        if cleaned.get("save_anyway") and not (cleaned.get("warning_reason") or "").strip():
            self.add_error("warning_reason", REASON_NEEDED_MESSAGE)
        return cleaned


class ProcedureForm(SaveAnywayFormMixin, RegistryModelForm):
    """The procedure page: the model's messages, and "save anyway" for its warnings."""


class PatientForm(SaveAnywayFormMixin, RegistryModelForm):
    """The patient page: the model's messages, and "save anyway" for a likely duplicate."""


class ProcedureChoiceField(forms.ModelChoiceField):
    def label_from_instance(self, obj):
        return f"{date_format(obj.date)} – {obj.get_technique_display()}"


class TreatedLevelChoiceField(forms.ModelChoiceField):
    def label_from_instance(self, obj):
        return _("%(level)s (%(etiology)s), procedure of %(date)s") % {
            "level": obj.get_level_display(),
            "etiology": obj.get_etiology_display(),
            "date": date_format(obj.procedure.date),
        }


class ComplicationForm(RegistryModelForm):
    """Offers only the procedures and treated levels of the complication's patient.

    The patient comes from the saved record, the posted form or the add link
    (``?patient=<id>``, as on the patient's record); without one, no procedure is offered and
    the page reloads with the patient's procedures as soon as one is chosen.
    """

    class Meta:
        model = Complication
        fields = [
            "patient",
            "procedure",
            "treated_level",
            *Complication.CLINICAL_FIELDS,
            "description",
        ]

    def __init__(self, *args, user=None, **kwargs):
        super().__init__(*args, **kwargs)
        patient_id = self._patient_id()
        procedures = Procedure.objects.for_user(user).filter(patient_id=patient_id or 0)
        levels = (
            TreatedLevel.objects.for_user(user)
            .filter(procedure__patient_id=patient_id or 0)
            .select_related("procedure")
            .order_by("procedure__date", "level")
        )
        self.fields["procedure"] = ProcedureChoiceField(
            queryset=procedures.order_by("date", "pk"),
            required=False,
            label=self.fields["procedure"].label,
            help_text=_("Only this patient's procedures are listed.")
            if patient_id
            else _("Choose the patient first: their procedures are listed then."),
        )
        self.fields["treated_level"] = TreatedLevelChoiceField(
            queryset=levels,
            required=False,
            label=self.fields["treated_level"].label,
            help_text=_("Only the levels treated in this patient's procedures are listed."),
        )

    def _patient_id(self) -> int | None:
        for value in (
            self.data.get(self.add_prefix("patient")) if self.is_bound else None,
            self.initial.get("patient"),
            self.instance.patient_id,
        ):
            value = getattr(value, "pk", value)
            if value is not None and str(value).isdigit():
                return int(value)
        return None
