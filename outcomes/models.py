"""Questionnaire responses with their raw answers, scores and provenance (design.md §2, §4).

A response belongs to a procedure at one timepoint (unique), which is also the natural key of
that procedure's follow-up, so the follow-up schedule joins on (procedure, timepoint).
"""

from __future__ import annotations

import pghistory
from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils.translation import gettext_lazy as _

from outcomes.instruments.odi import SECTIONS as ODI_SECTIONS
from registry.models import ScopedQuerySet, Site, constrain_choices, touch_updated_at

EQ5D_FIELDS = [
    "eq5d_mobility",
    "eq5d_self_care",
    "eq5d_usual_activities",
    "eq5d_pain_discomfort",
    "eq5d_anxiety_depression",
]
ODI_FIELDS = [f"odi_{section}" for section in ODI_SECTIONS]


class Timepoint(models.TextChoices):
    BASELINE = "baseline", _("Baseline")
    POST_OP = "post_op", _("Post-op")
    MONTH_3 = "month_3", _("3 months")
    MONTH_12 = "month_12", _("12 months")


class ResponseQuerySet(ScopedQuerySet):
    site_path = "procedure__patient__site"


def _eq5d_level_field(label):
    return models.PositiveSmallIntegerField(label, null=True, blank=True)


def _odi_field(label):
    return models.PositiveSmallIntegerField(label, null=True, blank=True)


@pghistory.track(
    pghistory.InsertEvent(),
    pghistory.UpdateEvent(),
    pghistory.DeleteEvent(),
    exclude=["created_at", "updated_at"],
)
@constrain_choices
class QuestionnaireResponse(models.Model):
    """One patient's answers at one timepoint of one procedure, with the scores computed from
    them and what they were computed with."""

    class Mode(models.TextChoices):
        WEB_LINK = "web_link", _("Web link")
        PAPER = "paper", _("Paper")
        PHONE = "phone", _("Phone")
        CLINIC = "clinic", _("In clinic")

    procedure = models.ForeignKey(
        "registry.Procedure", on_delete=models.PROTECT, related_name="responses"
    )
    timepoint = models.CharField(max_length=10, choices=Timepoint)
    mode = models.CharField(max_length=10, choices=Mode)
    answered_on = models.DateField(_("answered on"))
    entered_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="+",
        help_text=_("Empty when the patient answered through their link."),
    )

    vas_pain = models.PositiveSmallIntegerField(_("pain VAS (0–100 mm)"), null=True, blank=True)
    eq5d_version = models.CharField(
        _("EQ-5D version"), max_length=2, choices=Site.EQ5DVersion, blank=True
    )
    eq5d_mobility = _eq5d_level_field(_("EQ-5D mobility"))
    eq5d_self_care = _eq5d_level_field(_("EQ-5D self-care"))
    eq5d_usual_activities = _eq5d_level_field(_("EQ-5D usual activities"))
    eq5d_pain_discomfort = _eq5d_level_field(_("EQ-5D pain / discomfort"))
    eq5d_anxiety_depression = _eq5d_level_field(_("EQ-5D anxiety / depression"))
    eq_vas = models.PositiveSmallIntegerField(_("EQ VAS (0–100)"), null=True, blank=True)
    odi_pain_intensity = _odi_field(_("ODI 1 pain intensity"))
    odi_personal_care = _odi_field(_("ODI 2 personal care"))
    odi_lifting = _odi_field(_("ODI 3 lifting"))
    odi_walking = _odi_field(_("ODI 4 walking"))
    odi_sitting = _odi_field(_("ODI 5 sitting"))
    odi_standing = _odi_field(_("ODI 6 standing"))
    odi_sleeping = _odi_field(_("ODI 7 sleeping"))
    odi_sex_life = _odi_field(_("ODI 8 sex life"))
    odi_social_life = _odi_field(_("ODI 9 social life"))
    odi_travelling = _odi_field(_("ODI 10 travelling"))

    # Scores, computed by outcomes.services from the answers above.
    eq5d_value_set = models.CharField(
        _("EQ-5D value set"), max_length=8, choices=Site.ValueSet, blank=True
    )
    eq5d_index = models.DecimalField(
        _("EQ-5D index"), max_digits=4, decimal_places=3, null=True, blank=True
    )
    odi_score = models.DecimalField(
        _("ODI (%)"), max_digits=4, decimal_places=1, null=True, blank=True
    )
    scored_at = models.DateTimeField(null=True, blank=True)

    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True, db_index=True)  # API: updated_since

    objects = ResponseQuerySet.as_manager()

    class Meta:
        ordering = ["procedure", "timepoint"]
        constraints = [
            models.UniqueConstraint(
                fields=["procedure", "timepoint"], name="response_one_per_timepoint"
            ),
            models.CheckConstraint(
                condition=Q(vas_pain__isnull=True) | Q(vas_pain__gte=0, vas_pain__lte=100),
                name="response_vas_0_100",
            ),
            models.CheckConstraint(
                condition=Q(eq_vas__isnull=True) | Q(eq_vas__gte=0, eq_vas__lte=100),
                name="response_eq_vas_0_100",
            ),
            # EQ-5D is answered whole or not at all, within the version's levels. The explicit
            # NOT NULLs matter: a CHECK whose condition is NULL passes.
            models.CheckConstraint(
                condition=Q(eq5d_version="", **{f"{f}__isnull": True for f in EQ5D_FIELDS})
                | Q(eq5d_version="3L", **{f"{f}__range": (1, 3) for f in EQ5D_FIELDS})
                & Q(**{f"{f}__isnull": False for f in EQ5D_FIELDS})
                | Q(eq5d_version="5L", **{f"{f}__range": (1, 5) for f in EQ5D_FIELDS})
                & Q(**{f"{f}__isnull": False for f in EQ5D_FIELDS}),
                name="response_eq5d_complete_within_version",
            ),
            models.CheckConstraint(
                condition=Q(eq5d_index__isnull=True)
                | (
                    ~Q(eq5d_version="")
                    & Q(eq5d_value_set__endswith=models.F("eq5d_version"))
                    & Q(eq5d_index__lte=1)
                ),
                name="response_index_with_its_value_set",
            ),
            *[
                models.CheckConstraint(
                    condition=Q(**{f"{f}__isnull": True}) | Q(**{f"{f}__range": (0, 5)}),
                    name=f"response_{f}_0_5",
                )
                for f in ODI_FIELDS
            ],
            models.CheckConstraint(
                condition=Q(odi_score__isnull=True) | Q(odi_score__gte=0, odi_score__lte=100),
                name="response_odi_score_0_100",
            ),
        ]
        triggers = [touch_updated_at()]

    def __str__(self) -> str:
        return f"{self.procedure.patient} – {self.get_timepoint_display()}"

    @property
    def eq5d_state(self) -> str:
        """The five-digit EQ-5D state (MO SC UA PD AD), or "" when EQ-5D was not answered."""
        levels = [getattr(self, f) for f in EQ5D_FIELDS]
        if any(level is None for level in levels):
            return ""
        return "".join(str(level) for level in levels)

    @property
    def odi_answers(self) -> list[int | None]:
        return [getattr(self, f) for f in ODI_FIELDS]

    @property
    def odi_missing(self) -> int:
        return sum(answer is None for answer in self.odi_answers)
