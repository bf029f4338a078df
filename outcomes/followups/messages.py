"""The texts of patient emails and site digests (translated with the patient's language).

Each email names the clinic (the patient's site) and prints dates the way the patient's
language writes them (e.g. 28. nov 2026 in Danish), never as ISO dates.
"""

from __future__ import annotations

from django.conf import settings
from django.core.mail import EmailMessage
from django.urls import reverse
from django.utils.formats import date_format
from django.utils.translation import gettext as _

from outcomes.followups import texting
from outcomes.models import ContactAttempt, FollowUp
from outcomes.quality.queries import queries_raised_between, query_field_label, query_patient


def patient_message(kind: str, followup: FollowUp, url: str) -> tuple[str, str]:
    timepoint = followup.get_timepoint_display()
    clinic = followup.procedure.patient.site.name
    if kind == ContactAttempt.Kind.REMINDER_1 or kind == ContactAttempt.Kind.REMINDER_2:
        subject = _("Reminder from %(clinic)s: your %(timepoint)s questionnaire") % {
            "clinic": clinic,
            "timepoint": timepoint,
        }
        opening = _("We have not yet received your %(timepoint)s questionnaire.") % {
            "timepoint": timepoint
        }
    else:
        subject = _("%(clinic)s: your %(timepoint)s questionnaire after your back treatment") % {
            "clinic": clinic,
            "timepoint": timepoint,
        }
        opening = _("It is time for your %(timepoint)s questionnaire.") % {"timepoint": timepoint}
    body = "\n\n".join(
        [
            opening,
            _("It takes about ten minutes. Your personal link is:"),
            url,
            _("You can stop and come back to it through the same link until %(date)s.")
            % {"date": date_format(followup.window_end, "DATE_FORMAT")},
            _("If you do not wish to receive these emails, please contact %(clinic)s.")
            % {"clinic": clinic},
            _("Kind regards,\n%(clinic)s") % {"clinic": clinic},
        ]
    )
    return subject, body


def digest_message(attempt: ContactAttempt) -> EmailMessage:
    """The site's daily digest: the follow-ups that joined its phone worklist since the last
    digest (each is announced in exactly one), and the data queries raised since the last
    digest, each with a link to the patient's record page (where it is answered in place). By
    registry id only: never a name, nor the query's text (a monitor may have typed anything)."""
    announced = (
        FollowUp.objects.filter(announced_in=attempt)
        .select_related("procedure__patient")
        .order_by("window_end", "pk")
    )
    lines = [
        f"- {f.procedure.patient.registry_id}: {f.get_timepoint_display()}, "
        f"window closes {f.window_end.isoformat()} ({f.get_worklist_reason_display() or '-'})"
        for f in announced
    ]
    queries = _digest_queries(attempt)
    day = attempt.digest_date.isoformat()
    new_queries = _count(len(queries), "new data query", "new data queries")
    if lines:
        subject = f"Phone follow-up worklist for {attempt.site.code}: {len(lines)} new on {day}"
        if queries:
            subject += f", {new_queries}"
    else:
        subject = f"Data queries for {attempt.site.code}: {new_queries} on {day}"
    body: list[str] = []
    if lines:
        body += [
            "These follow-ups joined the phone worklist (no answer after two reminders, no "
            "email on file, or the email address was refused):",
            "",
            *lines,
            "",
            f"Work through them at {settings.SITE_URL}/admin/outcomes/followup/?worklist=yes",
        ]
    if queries:
        body += [
            *([""] if body else []),
            f"{new_queries} (answer each on the record page, under Open queries):",
            "",
            *queries,
        ]
    message = EmailMessage(
        subject, "\n".join(body), settings.DEFAULT_FROM_EMAIL, [attempt.site.contact_email]
    )
    message.extra_headers["X-Registry-Message"] = str(attempt.pk)
    return message


def _count(number: int, one: str, many: str) -> str:
    return f"{number} {one if number == 1 else many}"


def _digest_queries(attempt: ContactAttempt) -> list[str]:
    """One line per query raised at the site since its previous digest, up to this one."""
    previous = (
        ContactAttempt.objects.filter(
            kind=ContactAttempt.Kind.DIGEST,
            site_id=attempt.site_id,
            created_at__lt=attempt.created_at,
        )
        .order_by("-created_at")
        .values_list("created_at", flat=True)
        .first()
    )
    lines = []
    for query in queries_raised_between(
        site=attempt.site, after=previous, until=attempt.created_at
    ):
        patient = query_patient(query)
        where = (
            f"{settings.SITE_URL}{reverse('staff_record', args=[patient.registry_id])}"
            f"#query-{query.pk}"
            if patient is not None
            else f"{settings.SITE_URL}{reverse('admin:outcomes_dataquery_detail', args=[query.pk])}"
        )
        lines.append(f"- {query.record_label} · {query_field_label(query)}: {where}")
    return lines


def patient_text(kind: str, followup: FollowUp, url: str) -> str:
    """The text message of an invitation or reminder, in the active language: the clinic, the
    link, the last day and how to stop texts; spelled in GSM-7 where the language allows
    (``texting.gsm7_spelling``). At most ``texting.MAX_SEGMENTS`` segments: the clinic's name
    is shortened when a long one would need a third (tests/unit/test_texting.py)."""
    clinic = followup.procedure.patient.site.name
    timepoint = followup.get_timepoint_display()
    until = date_format(followup.window_end, "DATE_FORMAT")

    def compose(name: str) -> str:
        if kind in (ContactAttempt.Kind.REMINDER_1, ContactAttempt.Kind.REMINDER_2):
            first = _("Reminder from %(clinic)s: please answer your %(timepoint)s questionnaire")
        else:
            first = _("%(clinic)s: it is time for your %(timepoint)s questionnaire")
        text = " ".join(
            [
                first % {"clinic": name, "timepoint": timepoint} + ":",
                url,
                _("(open until %(date)s). Reply STOP to get no more texts.") % {"date": until},
            ]
        )
        return texting.gsm7_spelling(text)

    text = compose(clinic)
    while texting.segments(text) > texting.MAX_SEGMENTS and len(clinic) > 12:
        clinic = clinic[: len(clinic) - 8].rstrip() + "…"
        text = compose(clinic)
    return text
