"""The patient questionnaire behind a personal link, as a few short steps (design.md §6).

Each step is a plain Django form over some of the response's answers. A step's valid answers
are saved to the follow-up's draft at once, so a patient can stop and come back; the final
submit re-validates every step from the draft before anything is scored.
"""

from __future__ import annotations

from dataclasses import dataclass

from django import forms
from django.utils.translation import gettext_lazy as _

from outcomes.questionnaire.items import (
    EQ5D_DIMENSIONS,
    EQ_VAS_QUESTION,
    ODI_SECTIONS,
    VAS_QUESTION,
    eq5d_choices,
    odi_choices,
)

# ODI section 8 is "if applicable": a patient may leave it out, and the ODI manual scores the
# remaining nine sections (outcomes.instruments.odi).
OPTIONAL_FIELDS = frozenset({"odi_sex_life"})

CHOOSE_ONE = _("Please choose one answer.")
NUMBER_0_100 = _("Please give a number from 0 to 100.")


@dataclass(frozen=True)
class QuestionnaireStep:
    slug: str
    title: str
    fields: tuple[str, ...]


STEPS: tuple[QuestionnaireStep, ...] = (
    QuestionnaireStep("pain", _("Your back pain"), ("vas_pain",)),
    QuestionnaireStep(
        "health",
        _("Your health today"),
        tuple(f"eq5d_{name}" for name, *_rest in EQ5D_DIMENSIONS),
    ),
    QuestionnaireStep("health-scale", _("Your health today, on a scale"), ("eq_vas",)),
    QuestionnaireStep(
        "daily-life-1",
        _("How your back affects daily life (1 of 2)"),
        tuple(f"odi_{name}" for name, *_rest in ODI_SECTIONS[:5]),
    ),
    QuestionnaireStep(
        "daily-life-2",
        _("How your back affects daily life (2 of 2)"),
        tuple(f"odi_{name}" for name, *_rest in ODI_SECTIONS[5:]),
    ),
)
REVIEW = "review"


def step_by_slug(slug: str) -> QuestionnaireStep | None:
    return next((step for step in STEPS if step.slug == slug), None)


def _scale_field(label) -> forms.IntegerField:
    return forms.IntegerField(
        label=label,
        min_value=0,
        max_value=100,
        error_messages={
            "required": NUMBER_0_100,
            "invalid": NUMBER_0_100,
            "min_value": NUMBER_0_100,
            "max_value": NUMBER_0_100,
        },
        widget=forms.NumberInput(attrs={"inputmode": "numeric", "data-slider": "1"}),
    )


def _choice_field(label, choices, *, required: bool) -> forms.TypedChoiceField:
    return forms.TypedChoiceField(
        label=label,
        choices=choices,
        coerce=int,
        required=required,
        empty_value=None,
        error_messages={"required": CHOOSE_ONE, "invalid_choice": CHOOSE_ONE},
        widget=forms.RadioSelect,
    )


_EQ5D_HEADINGS = {f"eq5d_{name}": (name, heading) for name, heading, *_ in EQ5D_DIMENSIONS}
_ODI_HEADINGS = {f"odi_{name}": (name, heading) for name, heading, _answers in ODI_SECTIONS}
QUESTION_NAMES = ["vas_pain", "eq_vas", *_EQ5D_HEADINGS, *_ODI_HEADINGS]


def question_field(field: str, eq5d_levels: int) -> forms.Field:
    """One question of the questionnaire as a form field (built per form: labels and choices
    follow the active language)."""
    if field == "vas_pain":
        return _scale_field(VAS_QUESTION)
    if field == "eq_vas":
        return _scale_field(EQ_VAS_QUESTION)
    if field in _EQ5D_HEADINGS:
        name, heading = _EQ5D_HEADINGS[field]
        return _choice_field(heading, eq5d_choices(name, eq5d_levels), required=True)
    name, heading = _ODI_HEADINGS[field]
    return _choice_field(heading, odi_choices(name), required=field not in OPTIONAL_FIELDS)


def all_fields(eq5d_levels: int) -> dict[str, forms.Field]:
    """Every question of the questionnaire as a form field, in order."""
    return {field: question_field(field, eq5d_levels) for field in QUESTION_NAMES}


class StepForm(forms.Form):
    """The questions of one step, labelled in the active language. Only the step's own
    fields are built (the questionnaire path builds several of these per request)."""

    def __init__(self, *args, step: QuestionnaireStep, eq5d_levels: int, **kwargs):
        super().__init__(*args, **kwargs)
        self.step = step
        for name in step.fields:
            self.fields[name] = question_field(name, eq5d_levels)


def step_complete(step: QuestionnaireStep, answers: dict, eq5d_levels: int) -> bool:
    """Whether the saved ``answers`` hold a valid answer to every required question."""
    return StepForm(data=_as_data(answers), step=step, eq5d_levels=eq5d_levels).is_valid()


def first_incomplete_step(answers: dict, eq5d_levels: int) -> QuestionnaireStep | None:
    return next((s for s in STEPS if not step_complete(s, answers, eq5d_levels)), None)


def clean_answers(answers: dict, eq5d_levels: int) -> dict[str, int | None]:
    """Every answer validated again, step by step; raises ValueError when a step is
    incomplete (the caller sends the patient back to it)."""
    cleaned: dict[str, int | None] = {}
    for step in STEPS:
        form = StepForm(data=_as_data(answers), step=step, eq5d_levels=eq5d_levels)
        if not form.is_valid():
            raise ValueError(step.slug)
        cleaned.update(form.cleaned_data)
    return cleaned


def _as_data(answers: dict) -> dict[str, str]:
    return {name: "" if value is None else str(value) for name, value in answers.items()}
