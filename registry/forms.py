"""Entry forms of the admin that need more than a ModelForm: choices that depend on the
record being entered (a complication's procedure and level belong to its patient)."""

from __future__ import annotations

from django import forms
from django.utils.formats import date_format
from django.utils.translation import gettext_lazy as _

from registry.models import Complication, Procedure, TreatedLevel


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


class ComplicationForm(forms.ModelForm):
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
            "date",
            "type",
            "cirse_grade",
            "relation",
            "outcome",
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
