"""A PostgreSQL array of choices that the admin shows as a list of checkboxes."""

from __future__ import annotations

from django import forms
from django.contrib.postgres.fields import ArrayField
from django.db import models


class MultipleChoiceArrayField(ArrayField):
    """``ArrayField`` of a ``CharField`` with choices, edited as checkboxes.

    The database check constraint that every element is an allowed choice is declared on the
    model (``<field>__contained_by``), so bad values are refused by PostgreSQL too.
    """

    def __init__(self, base_field: models.CharField, **kwargs):
        kwargs.setdefault("default", list)
        kwargs.setdefault("blank", True)
        super().__init__(base_field, **kwargs)

    def formfield(self, **kwargs):
        defaults = {
            "form_class": forms.TypedMultipleChoiceField,
            "choices": self.base_field.choices,
            "coerce": self.base_field.to_python,
            "widget": forms.CheckboxSelectMultiple,
            "required": not self.blank,
        }
        defaults.update(kwargs)
        # Skip ArrayField.formfield (a comma-separated text box) and build a choice field.
        return super(ArrayField, self).formfield(**defaults)
