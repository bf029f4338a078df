"""The texts of patient emails and site digests (translated with the patient's language)."""

from __future__ import annotations

from django.utils.translation import gettext as _

from outcomes.models import ContactAttempt, FollowUp


def patient_message(kind: str, followup: FollowUp, url: str) -> tuple[str, str]:
    timepoint = followup.get_timepoint_display()
    if kind == ContactAttempt.Kind.INVITATION:
        subject = _("Your %(timepoint)s questionnaire after your back treatment") % {
            "timepoint": timepoint
        }
        opening = _("It is time for your %(timepoint)s questionnaire.") % {"timepoint": timepoint}
    else:
        subject = _("Reminder: your %(timepoint)s questionnaire") % {"timepoint": timepoint}
        opening = _("We have not yet received your %(timepoint)s questionnaire.") % {
            "timepoint": timepoint
        }
    body = "\n\n".join(
        [
            opening,
            _("It takes about ten minutes. Your personal link is:"),
            url,
            _("You can stop and come back to it through the same link until %(date)s.")
            % {"date": followup.window_end.isoformat()},
            _("If you do not wish to receive these emails, please contact the clinic."),
        ]
    )
    return subject, body
