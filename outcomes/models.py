"""Questionnaire responses with their raw answers, scores and provenance (design.md §2, §4).

A response belongs to a procedure at one timepoint (unique), which is also the natural key of
that procedure's follow-up, so the follow-up schedule joins on (procedure, timepoint).
"""

from __future__ import annotations

import functools
import operator

import pghistory
import pgtrigger
from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import models
from django.db.models import Q
from django.utils.translation import gettext_lazy as _

from outcomes.followups import schedule
from outcomes.instruments.odi import SECTIONS as ODI_SECTIONS
from registry import audit, validation
from registry.locking import TIMEPOINT_KEYS, record_guards
from registry.models import (
    ScopedQuerySet,
    Site,
    constrain_choices,
    touch_updated_at,
    track_history,
)

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


@track_history()
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
        "registry.Procedure",
        on_delete=models.PROTECT,
        related_name="responses",
        verbose_name=_("procedure"),
    )
    timepoint = models.CharField(_("timepoint"), max_length=10, choices=Timepoint)
    mode = models.CharField(_("mode"), max_length=10, choices=Mode)
    answered_on = models.DateField(
        _("answered on"), validators=[validation.validate_not_before_1900]
    )
    entered_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="+",
        help_text=_("Empty when the patient answered through their link."),
        verbose_name=_("entered by"),
    )

    vas_pain = models.PositiveSmallIntegerField(
        _("pain VAS (0–100 mm)"),
        null=True,
        blank=True,
        validators=[validation.validate_vas],
    )
    eq5d_version = models.CharField(
        _("EQ-5D version"), max_length=2, choices=Site.EQ5DVersion, blank=True
    )
    eq5d_mobility = _eq5d_level_field(_("EQ-5D mobility"))
    eq5d_self_care = _eq5d_level_field(_("EQ-5D self-care"))
    eq5d_usual_activities = _eq5d_level_field(_("EQ-5D usual activities"))
    eq5d_pain_discomfort = _eq5d_level_field(_("EQ-5D pain / discomfort"))
    eq5d_anxiety_depression = _eq5d_level_field(_("EQ-5D anxiety / depression"))
    eq_vas = models.PositiveSmallIntegerField(
        _("EQ VAS (0–100)"),
        null=True,
        blank=True,
        validators=[validation.validate_vas],
    )
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

    # Scores, computed by outcomes.responses from the answers above.
    eq5d_value_set = models.CharField(
        _("EQ-5D value set"), max_length=8, choices=Site.ValueSet, blank=True
    )
    eq5d_index = models.DecimalField(
        _("EQ-5D index"), max_digits=4, decimal_places=3, null=True, blank=True
    )
    odi_score = models.DecimalField(
        _("ODI (%)"), max_digits=4, decimal_places=1, null=True, blank=True
    )
    scored_at = models.DateTimeField(_("scored at"), null=True, blank=True)

    created_at = models.DateTimeField(_("created at"), auto_now_add=True)
    # API: updated_since
    updated_at = models.DateTimeField(_("updated at"), auto_now=True, db_index=True)

    objects = ResponseQuerySet.as_manager()

    class Meta:
        verbose_name = _("questionnaire response")
        verbose_name_plural = _("questionnaire responses")
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
                condition=functools.reduce(
                    operator.or_,
                    [
                        Q(
                            eq5d_version=version,
                            **{f"{f}__range": (1, version.levels) for f in EQ5D_FIELDS},
                        )
                        & Q(**{f"{f}__isnull": False for f in EQ5D_FIELDS})
                        for version in Site.EQ5DVersion
                    ],
                    Q(eq5d_version="", **{f"{f}__isnull": True for f in EQ5D_FIELDS}),
                ),
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
        triggers = [
            touch_updated_at(),
            *record_guards(TIMEPOINT_KEYS),
            # Chronology across tables (docs/validation.md): follow-up answers are not dated
            # before their procedure, no answer is dated outside the patient's life or after
            # today at the site.
            pgtrigger.Trigger(
                name="answered_on_chronology",
                when=pgtrigger.Before,
                operation=pgtrigger.Insert | pgtrigger.Update,
                declare=[
                    ("procedure_date", "date"),
                    ("born", "date"),
                    ("died", "date"),
                    ("today", "date"),
                ],
                func="""
                SELECT p.date, pt.date_of_birth, pt.date_of_death,
                       (now() AT TIME ZONE s.time_zone)::date
                  INTO procedure_date, born, died, today
                  FROM registry_procedure p
                  JOIN registry_patient pt ON pt.id = p.patient_id
                  JOIN registry_site s ON s.id = pt.site_id
                 WHERE p.id = NEW.procedure_id;
                IF NEW.timepoint <> 'baseline' AND NEW.answered_on < procedure_date THEN
                    RAISE EXCEPTION 'follow-up answers dated % before the procedure on %',
                        NEW.answered_on, procedure_date
                        USING ERRCODE = 'check_violation',
                        CONSTRAINT = 'response_follow_up_not_before_procedure';
                END IF;
                IF NEW.answered_on < born OR NEW.answered_on > died THEN
                    RAISE EXCEPTION 'answers dated % outside the patient''s life', NEW.answered_on
                        USING ERRCODE = 'check_violation',
                        CONSTRAINT = 'response_within_patient_life';
                END IF;
                IF NEW.answered_on > today THEN
                    RAISE EXCEPTION 'answers dated % are in the future', NEW.answered_on
                        USING ERRCODE = 'check_violation',
                        CONSTRAINT = 'response_answered_on_not_in_future';
                END IF;
                RETURN NEW;
                """,
            ),
        ]

    def __str__(self) -> str:
        return f"{self.procedure.patient} – {self.get_timepoint_display()}"

    def clean(self) -> None:
        if not (self.procedure_id and self.answered_on):
            return
        procedure = self.procedure
        patient = procedure.patient
        errors: dict[str, str] = {}
        if self.timepoint != Timepoint.BASELINE and self.answered_on < procedure.date:
            errors["answered_on"] = _(
                "Answers for %(timepoint)s cannot be dated before the procedure (%(date)s)."
            ) % {"timepoint": self.get_timepoint_display(), "date": procedure.date.isoformat()}
        elif self.answered_on < patient.date_of_birth:
            errors["answered_on"] = _("The answers are dated before the date of birth.")
        elif patient.date_of_death and self.answered_on > patient.date_of_death:
            errors["answered_on"] = _(
                "The answers are dated after the patient's recorded death (%(date)s)."
            ) % {"date": patient.date_of_death.isoformat()}
        else:
            errors.update(
                validation.future_errors({"answered_on": self.answered_on}, patient.site.time_zone)
            )
        if errors:
            raise ValidationError(errors)

    @property
    def eq5d_state(self) -> str:
        """The five-digit EQ-5D state (MO SC UA PD AD), or "" when EQ-5D was not answered."""
        levels = [getattr(self, f) for f in EQ5D_FIELDS]
        if any(level is None for level in levels):
            return ""
        return "".join(str(level) for level in levels)

    @property
    def is_blank(self) -> bool:
        """No question answered at all (such a response never completes a follow-up)."""
        answers = [self.vas_pain, self.eq_vas, *self.odi_answers]
        return not self.eq5d_state and all(answer is None for answer in answers)

    @property
    def odi_answers(self) -> list[int | None]:
        return [getattr(self, f) for f in ODI_FIELDS]

    @property
    def odi_missing(self) -> int:
        return sum(answer is None for answer in self.odi_answers)


def patient_emailable(patient: str = "") -> Q:
    """The one rule "this patient may be emailed" (design.md §5): an email address on file,
    consent to contact, alive, consent not withdrawn. ``patient`` is the lookup path to the
    patient with its trailing ``__`` ("" on Patient, "procedure__patient__" on a follow-up).

    The sweep (invite or phone), the sender (checked again right before a message leaves) and
    staff's "send a new link" all ask this.
    """
    return (
        Q(**{f"{patient}contact__consent_to_contact": True})
        & Q(**{f"{patient}contact__email__gt": ""})
        & Q(**{f"{patient}date_of_death__isnull": True})
        & Q(**{f"{patient}consent_withdrawn_date__isnull": True})
    )


def patient_textable(patient: str = "") -> Q:
    """The one rule "this patient may be sent a text message": a mobile number on file, consent
    to contact, alive, consent not withdrawn, and no STOP reply (``sms_stopped_at``). The same
    shape as ``patient_emailable``; the sweep, the sender's re-checks and the STOP webhook's
    effect all go through it. (Whether SMS is configured at all is ``outcomes.followups.sms``'s
    question.)"""
    return (
        Q(**{f"{patient}contact__consent_to_contact": True})
        & Q(**{f"{patient}contact__phone__gt": ""})
        & Q(**{f"{patient}contact__sms_stopped_at__isnull": True})
        & Q(**{f"{patient}date_of_death__isnull": True})
        & Q(**{f"{patient}consent_withdrawn_date__isnull": True})
    )


def attempt_refused_q(channel: str) -> Q:
    """The one rule "this attempt shows the channel refused for good" (for attempts): the
    server or provider refused it when sent (``failed``), or the SMS provider's receipt said
    afterwards that the text was ``undelivered`` or ``failed``. A follow-up with one such
    attempt takes the other channel for its later steps (sweep.py, sending.py)."""
    return Q(channel=channel) & (
        Q(status="failed") | Q(delivery_status__in=["undelivered", "failed"])
    )


def on_worklist_q(followup: str = "") -> Q:
    """The one rule "this follow-up is on the phone worklist": pending, put there, not called
    off it, and the patient agreed to be contacted (no one else is called or counted).
    ``followup`` is the lookup path to the follow-up with its trailing ``__``."""
    return (
        ~Q(**{f"{followup}state__in": list(schedule.FINAL_STATES)})
        & Q(**{f"{followup}on_phone_worklist_since__isnull": False})
        & Q(**{f"{followup}phone_outcome": ""})
        & Q(**{f"{followup}procedure__patient__contact__consent_to_contact": True})
    )


class FollowUpQuerySet(ScopedQuerySet):
    site_path = "procedure__patient__site"

    def pending(self) -> FollowUpQuerySet:
        """Follow-ups not in a final state (still to be answered, chased or called)."""
        return self.exclude(state__in=FollowUp.FINAL_STATES)

    def on_worklist(self) -> FollowUpQuerySet:
        """The site's phone worklist: pending follow-ups put there and not yet called, of
        patients who agreed to be contacted (no one else is called)."""
        return self.filter(on_worklist_q())


# Statement-level update history: the chasing sweep moves 500 follow-ups in one UPDATE.
@track_history(update_level=pgtrigger.Statement)
@constrain_choices
class FollowUp(models.Model):
    """One timepoint of a procedure's follow-up schedule (design.md §3, §5)."""

    class State(models.TextChoices):
        SCHEDULED = "scheduled", _("Scheduled")
        OPEN = "open", _("Open")
        INVITED = "invited", _("Invited")
        REMINDED = "reminded", _("Reminded")
        COMPLETED = "completed", _("Completed")
        MISSED = "missed", _("Missed")
        CANCELLED = "cancelled", _("Cancelled")

    class CancelReason(models.TextChoices):
        DEATH = "death", _("Patient died")
        WITHDRAWAL = "withdrawal", _("Consent withdrawn")

    class PhoneOutcome(models.TextChoices):
        """Why a follow-up left the phone worklist without answers (the last final call of
        its call log, ``PhoneCall``); empty while it is on the list."""

        REACHED = "reached", _("Reached")
        ANSWERED_BY_PHONE = "answered_by_phone", _("Answered by phone")
        UNREACHABLE = "unreachable", _("Unreachable")
        REFUSED = "refused", _("Refused")
        WRONG_NUMBER = "wrong_number", _("Wrong number")

    class WorklistReason(models.TextChoices):
        NO_EMAIL = "no_email", _("No email or no consent to email")
        NOT_CHASED = "not_chased", _("Not chased by email (taken in clinic)")
        NO_ANSWER = "no_answer", _("No answer after two reminders")
        EMAIL_REFUSED = "email_refused", _("Email address refused by the mail server")
        SMS_REFUSED = "sms_refused", _("Phone number refused by the SMS provider")
        SMS_UNDELIVERED = "sms_undelivered", _("Text message not delivered (provider's receipt)")

    # Spelled once, in the pure schedule module; the model's choices must contain them.
    FINAL_STATES = tuple(map(State, schedule.FINAL_STATES))

    procedure = models.ForeignKey(
        "registry.Procedure",
        on_delete=models.CASCADE,
        related_name="followups",
        verbose_name=_("procedure"),
    )
    timepoint = models.CharField(_("timepoint"), max_length=10, choices=Timepoint)
    due_date = models.DateField(_("due date"))
    window_start = models.DateField(_("window start"))
    window_end = models.DateField(_("window end"))
    state = models.CharField(_("state"), max_length=10, choices=State, default=State.SCHEDULED)
    invited_on = models.DateField(_("invited on"), null=True, blank=True)
    invitations_sent = models.PositiveSmallIntegerField(_("invitations sent"), default=0)
    reminders_sent = models.PositiveSmallIntegerField(_("reminders sent"), default=0)
    last_contact_on = models.DateField(_("last contact on"), null=True, blank=True)
    on_phone_worklist_since = models.DateField(_("on phone worklist since"), null=True, blank=True)
    phone_outcome = models.CharField(
        _("phone outcome"), max_length=20, choices=PhoneOutcome, blank=True
    )
    phone_note = models.CharField(
        _("phone note"), max_length=300, blank=True, validators=[validation.validate_no_cpr]
    )
    worklist_reason = models.CharField(
        _("worklist reason"), max_length=16, choices=WorklistReason, blank=True
    )
    # The site digest that announced this follow-up on the phone worklist (exactly one).
    announced_in = models.ForeignKey(
        "ContactAttempt",
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="announced",
        verbose_name=_("announced in"),
    )
    cancel_reason = models.CharField(
        _("cancel reason"), max_length=20, choices=CancelReason, blank=True
    )
    # Questionnaire link: the token is an HMAC of the nonce and is never stored; only its hash.
    link_nonce = models.CharField(_("link nonce"), max_length=32, blank=True)
    link_token_hash = models.CharField(
        _("link token hash"), max_length=64, blank=True, db_index=True
    )
    # What staff see of the current link: when it was issued, first opened, first answered
    # (a step saved) and submitted through.
    link_issued_at = models.DateTimeField(_("link issued at"), null=True, blank=True)
    link_opened_at = models.DateTimeField(_("link opened at"), null=True, blank=True)
    link_started_at = models.DateTimeField(_("link started at"), null=True, blank=True)
    link_submitted_at = models.DateTimeField(_("link submitted at"), null=True, blank=True)
    completed_at = models.DateTimeField(_("completed at"), null=True, blank=True)
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)
    # API: updated_since
    updated_at = models.DateTimeField(_("updated at"), auto_now=True, db_index=True)

    objects = FollowUpQuerySet.as_manager()

    class Meta:
        verbose_name = _("follow-up")
        verbose_name_plural = _("follow-ups")
        ordering = ["procedure", "due_date"]
        indexes = [
            # The phone worklist (a few hundred rows of 1.4M): its filter starts here.
            models.Index(
                fields=["procedure"],
                name="followup_worklist_idx",
                condition=Q(on_phone_worklist_since__isnull=False, phone_outcome=""),
            ),
            # The sweep walks pending follow-ups whose window has opened, in pk order.
            models.Index(
                fields=["window_start", "id"],
                name="followup_pending_idx",
                condition=~Q(state__in=list(schedule.FINAL_STATES)),
            ),
        ]
        constraints = [
            models.UniqueConstraint(
                fields=["procedure", "timepoint"], name="followup_one_per_timepoint"
            ),
            models.CheckConstraint(
                condition=Q(window_start__lte=models.F("due_date"))
                & Q(due_date__lte=models.F("window_end")),
                name="followup_due_within_window",
            ),
            models.CheckConstraint(
                condition=Q(state="cancelled") | Q(cancel_reason=""),
                name="followup_cancel_reason_only_when_cancelled",
            ),
            models.CheckConstraint(
                condition=~Q(state="completed") | Q(completed_at__isnull=False),
                name="followup_completed_has_time",
            ),
            validation.no_cpr_check("followup", "phone_note"),
        ]
        triggers = [touch_updated_at(switchable=False)]

    def __str__(self) -> str:
        return f"{self.procedure.patient} – {self.get_timepoint_display()}"


class PhoneCallQuerySet(ScopedQuerySet):
    site_path = "followup__procedure__patient__site"

    def standing(self) -> PhoneCallQuerySet:
        """Calls not undone (the ones that count and show as made)."""
        return self.filter(undone_at__isnull=True)


@track_history()
@constrain_choices
class PhoneCall(models.Model):
    """One call to a patient on the phone worklist: the call log of a follow-up.

    A call with a final outcome (refused, wrong number) takes the follow-up off the list
    (``FollowUp.phone_outcome``); "answered" keeps it there until the answers are saved,
    which completes it. A call is undone the same day at the site (``undone_at``), never
    deleted: the history keeps who logged and who undid it.
    """

    class Outcome(models.TextChoices):
        NO_ANSWER = "no_answer", _("No answer")
        VOICEMAIL = "voicemail", _("Voicemail left")
        WRONG_NUMBER = "wrong_number", _("Wrong number")
        CALL_BACK = "call_back", _("Call back at")
        REFUSED = "refused", _("Refused")
        ANSWERED = "answered", _("Answered")

    # The follow-up's phone outcome set by a call that ends the calling.
    TAKES_OFF_LIST = {
        Outcome.WRONG_NUMBER: FollowUp.PhoneOutcome.WRONG_NUMBER,
        Outcome.REFUSED: FollowUp.PhoneOutcome.REFUSED,
    }

    followup = models.ForeignKey(
        FollowUp, on_delete=models.CASCADE, related_name="calls", verbose_name=_("follow-up")
    )
    called_at = models.DateTimeField(_("called at"))
    caller = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.PROTECT,
        related_name="+",
        verbose_name=_("caller"),
    )
    outcome = models.CharField(_("outcome"), max_length=12, choices=Outcome)
    call_back_at = models.DateTimeField(_("call back at"), null=True, blank=True)
    note = models.CharField(
        _("note"), max_length=300, blank=True, validators=[validation.validate_no_cpr]
    )
    undone_at = models.DateTimeField(_("undone at"), null=True, blank=True)
    undone_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("undone by"),
    )

    objects = PhoneCallQuerySet.as_manager()

    class Meta:
        verbose_name = _("phone call")
        verbose_name_plural = _("phone calls")
        ordering = ["called_at", "pk"]
        indexes = [
            # A follow-up's call log, in order (the worklist's counts and last call).
            models.Index(fields=["followup", "called_at"], name="phonecall_followup_idx"),
        ]
        constraints = [
            models.CheckConstraint(
                condition=Q(outcome="call_back", call_back_at__isnull=False)
                | (~Q(outcome="call_back") & Q(call_back_at__isnull=True)),
                name="phonecall_call_back_time_with_call_back_only",
            ),
            models.CheckConstraint(
                condition=Q(undone_at__isnull=True, undone_by__isnull=True)
                | Q(undone_at__isnull=False, undone_by__isnull=False),
                name="phonecall_undone_by_someone",
            ),
            validation.no_cpr_check("phonecall", "note"),
        ]

    def __str__(self) -> str:
        return f"{self.get_outcome_display()} ({self.called_at:%Y-%m-%d %H:%M})"


@audit.track(
    # Statement-level: the sweep inserts a batch's attempts in one statement (issue 32).
    pghistory.InsertEvent(level=pgtrigger.Statement),
    # Every change of status (claimed, sent, failed, unknown, resolved by staff) with its actor.
    pghistory.UpdateEvent(condition=pghistory.AnyChange("status")),
    fields=["status", "tries", "error", "error_code", "claimed_by", "sent_at"],
    model_name="ContactAttemptEvent",
    obj_field=pghistory.ObjForeignKey(related_name="events"),
)
@constrain_choices
class ContactAttempt(models.Model):
    """One message of the chasing, and the outbox it is sent from (design.md §5).

    The row is the truth, a queued task only a hint: every sweep dispatches again what is due
    and not finished. A sender claims the row (``sending``) in its own transaction, sends with
    no transaction open, then records ``sent``; a worker that dies between sending and
    recording leaves ``unknown`` for staff to resolve. The unique constraints make a second
    invitation, reminder or digest for the same step impossible whatever the number of workers.
    """

    class Kind(models.TextChoices):
        INVITATION = "invitation", _("Invitation")
        REMINDER_1 = "reminder_1", _("Reminder 1")
        REMINDER_2 = "reminder_2", _("Reminder 2")
        DIGEST = "digest", _("Daily digest to site")
        # A new link sent by staff (outcomes.followups.manual_send); as many as staff send.
        MANUAL = "manual", _("Link sent by staff")

    class Channel(models.TextChoices):
        EMAIL = "email", _("Email")
        SMS = "sms", _("Text message (SMS)")
        HANDOVER = "handover", _("Shown to staff to hand over")

    class DeliveryStatus(models.TextChoices):
        # The SMS provider's final word on a text it accepted (its status callback).
        DELIVERED = "delivered", _("Delivered")
        UNDELIVERED = "undelivered", _("Not delivered")
        FAILED = "failed", _("Failed at the provider")

    class Status(models.TextChoices):
        PENDING = "pending", _("Pending")  # due now, or at next_try_at after a transient failure
        SENDING = "sending", _("Sending")  # claimed by a worker (claimed_by, claimed_at)
        SENT = "sent", _("Sent")
        FAILED = "failed", _("Failed")  # refused for good (SMTP 5xx): not tried again
        UNKNOWN = "unknown", _("Unknown")  # the body went; its result could not be recorded
        SKIPPED = "skipped", _("Skipped")  # deceased, withdrawn, answered, no longer emailable

    followup = models.ForeignKey(
        FollowUp,
        on_delete=models.CASCADE,
        null=True,
        blank=True,
        related_name="attempts",
        verbose_name=_("followup"),
    )
    site = models.ForeignKey(
        "registry.Site", on_delete=models.CASCADE, related_name="+", verbose_name=_("site")
    )
    kind = models.CharField(_("kind"), max_length=12, choices=Kind)
    channel = models.CharField(_("channel"), max_length=8, choices=Channel, default=Channel.EMAIL)
    status = models.CharField(_("status"), max_length=8, choices=Status, default=Status.PENDING)
    digest_date = models.DateField(_("digest date"), null=True, blank=True)
    tries = models.PositiveSmallIntegerField(_("tries"), default=0)
    # A classified reason ("SMTP 550 permanent: recipient refused", "timeout"), never the
    # address or the server's text, which may echo it.
    error = models.TextField(_("error"), blank=True)
    error_code = models.PositiveSmallIntegerField(_("SMTP code"), null=True, blank=True)
    next_try_at = models.DateTimeField(_("next try at"), null=True, blank=True)  # empty: due now
    # When the last hint was queued.
    dispatched_at = models.DateTimeField(_("dispatched at"), null=True, blank=True)
    claimed_at = models.DateTimeField(_("claimed at"), null=True, blank=True)
    claimed_by = models.CharField(_("claimed by"), max_length=200, blank=True)
    # Set right before the message body goes to the server: a claim that expires with this
    # set may have been delivered (unknown); without it, it was not (pending again).
    send_started_at = models.DateTimeField(_("send started at"), null=True, blank=True)
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)
    sent_at = models.DateTimeField(_("sent at"), null=True, blank=True)
    sent_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="+",
        help_text=_("The staff member who sent it (empty for the automatic chasing)."),
        verbose_name=_("sent by"),
    )
    # SMS only: the provider's id of the message (Twilio's "SM…" sid), and what its delivery
    # receipt said, with the provider's error code (never the number).
    provider_id = models.CharField(_("provider message id"), max_length=64, blank=True)
    delivery_status = models.CharField(
        _("delivery status"), max_length=12, choices=DeliveryStatus, blank=True
    )
    provider_error_code = models.PositiveIntegerField(
        _("provider error code"), null=True, blank=True
    )

    class Meta:
        verbose_name = _("contact attempt")
        verbose_name_plural = _("contact attempts")
        ordering = ["-created_at"]
        indexes = [
            # The admin list's order.
            models.Index(fields=["created_at", "id"], name="contactattempt_created_idx"),
            # A delivery receipt finds its text by the provider's id.
            models.Index(
                fields=["provider_id"],
                name="contactattempt_provider_idx",
                condition=~Q(provider_id=""),
            ),
            # The sweep's dispatch reads the unfinished attempts (a small part of the table).
            models.Index(
                fields=["next_try_at", "id"],
                name="contactattempt_unfinished_idx",
                condition=Q(status__in=["pending", "sending"]),
            ),
        ]
        constraints = [
            # One per step and channel: the other channel is tried only when one was refused
            # for good (sending.py), so a step is sent by at most two messages, never twice
            # by the same channel.
            models.UniqueConstraint(
                fields=["followup", "kind", "channel"],
                condition=Q(followup__isnull=False) & ~Q(kind="manual"),
                name="contactattempt_one_per_step_channel",
            ),
            models.UniqueConstraint(
                fields=["site", "digest_date"],
                condition=Q(kind="digest"),
                name="contactattempt_one_digest_per_site_day",
            ),
            models.CheckConstraint(
                condition=Q(kind="digest", followup__isnull=True, digest_date__isnull=False)
                | (~Q(kind="digest") & Q(followup__isnull=False)),
                name="contactattempt_digest_has_date_step_has_followup",
            ),
            models.CheckConstraint(
                condition=~Q(status="sending") | Q(claimed_at__isnull=False),
                name="contactattempt_sending_is_claimed",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} ({self.get_status_display()})"


class QuestionnaireDraft(models.Model):
    """Answers a patient has saved part-way through their link, until they submit.

    Kept apart from the follow-up (which has history) so that each saved step is not an audit
    event; the submitted response carries the answers and their history. Deleted on submit.
    """

    followup = models.OneToOneField(
        FollowUp, on_delete=models.CASCADE, primary_key=True, related_name="draft"
    )
    answers = models.JSONField(default=dict)
    updated_at = models.DateTimeField(auto_now=True)

    def __str__(self) -> str:
        return f"Draft of {self.followup_id}"


class LinkFailure(models.Model):
    """Failed questionnaire-link requests per client and fixed time window (rate limit).

    The client is kept as a keyed hash of its address, never the address itself. Counting in
    PostgreSQL with an atomic upsert makes the limit hold across every web process without a
    cache server.
    """

    client_key = models.CharField(max_length=64)
    window_start = models.DateTimeField()
    count = models.PositiveIntegerField(default=0)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["client_key", "window_start"], name="linkfailure_one_per_client_window"
            )
        ]
        # Pruning deletes old windows.
        indexes = [models.Index(fields=["window_start"], name="linkfailure_window_idx")]

    def __str__(self) -> str:
        return f"{self.count} failures from {self.client_key[:8]}… at {self.window_start}"


class SweepRun(models.Model):
    """When the periodic chasing sweep last finished, one row per sweep name (health checks).

    ``/readyz`` answers 503 when the last sweep is older than two intervals: a stopped beat or
    a worker that cannot reach the database shows before follow-ups go unchased for days.
    """

    name = models.CharField(max_length=40, primary_key=True)
    started_at = models.DateTimeField()
    finished_at = models.DateTimeField()
    actions = models.PositiveIntegerField(default=0)
    messages = models.PositiveIntegerField(default=0)

    def __str__(self) -> str:
        return f"{self.name} at {self.finished_at:%Y-%m-%d %H:%M:%S}"


# Electronic consent (outcomes/consent/); the data-quality records (runs and findings of the
# rules, warnings saved anyway, queries to sites) live in their package, outcomes/quality/.
from outcomes.consent.models import (  # noqa: E402, F401
    ConsentDocument,
    ConsentRequest,
    PatientConsent,
)
from outcomes.quality.models import (  # noqa: E402, F401
    DataQuery,
    QualityFinding,
    QualityRun,
    WarningAcknowledgement,
)
