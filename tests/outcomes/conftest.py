"""Shared pieces of the questionnaire-link tests: a follow-up invited by the real sweep,
the token from its email, and a full set of answers."""

import datetime
import re

import pytest
import time_machine
from django.core import mail
from django.urls import reverse

from outcomes.followups.sending import contact_attempt_send
from outcomes.followups.sweep import followups_ensure, followups_sweep
from outcomes.models import FollowUp
from tests.factories import make_contact, make_patient, make_procedure
from tests.services import SmtpServer

PROCEDURE_DAY = datetime.date(2026, 1, 12)
# Inside the 3-month window (days 75-120 after the procedure), 09:00 in Copenhagen.
IN_WINDOW = datetime.datetime(2026, 4, 13, 8, tzinfo=datetime.UTC)
AFTER_WINDOW = datetime.datetime(2026, 5, 20, 8, tzinfo=datetime.UTC)

ANSWERS = {
    "pain": {"vas_pain": "72"},
    "health": {
        "eq5d_mobility": "2",
        "eq5d_self_care": "1",
        "eq5d_usual_activities": "3",
        "eq5d_pain_discomfort": "4",
        "eq5d_anxiety_depression": "1",
    },
    "health-scale": {"eq_vas": "55"},
    "daily-life-1": {
        "odi_pain_intensity": "3",
        "odi_personal_care": "2",
        "odi_lifting": "4",
        "odi_walking": "2",
        "odi_sitting": "1",
    },
    # Section 8 (sex life) left out, as the questionnaire allows.
    "daily-life-2": {
        "odi_standing": "3",
        "odi_sleeping": "2",
        "odi_social_life": "2",
        "odi_travelling": "1",
    },
}


@pytest.fixture
def clock():
    with time_machine.travel(IN_WINDOW, tick=False) as traveller:
        yield traveller


@pytest.fixture
def patient(site_a):
    patient = make_patient(site_a, consent_date=PROCEDURE_DAY)
    make_contact(patient, email="karen@example.org", preferred_language="en")
    return patient


@pytest.fixture
def followup(patient, clock):
    procedure = make_procedure(patient, "osteoporotic", date=PROCEDURE_DAY)
    followups_ensure(procedure_ids=[procedure.pk])
    for attempt_id in followups_sweep(now=IN_WINDOW).attempt_ids:
        contact_attempt_send(attempt_id=attempt_id, now=IN_WINDOW)
    return FollowUp.objects.get(procedure=procedure, timepoint="month_3")


@pytest.fixture
def token(followup):
    (message,) = mail.outbox
    (url,) = re.findall(r"http\S+/q/\S+/", message.body)
    return url.rstrip("/").rsplit("/", 1)[-1]


def step_url(token, slug):
    return reverse("questionnaire_step", args=[token, slug])


def answer_all(client, token):
    for slug, data in ANSWERS.items():
        response = client.post(step_url(token, slug), data)
        assert response.status_code == 302, response.content.decode()[:2000]


@pytest.fixture
def smtp_server():
    """A real SMTP server on loopback (aiosmtpd) recording what it accepts."""
    with SmtpServer() as server:
        yield server


@pytest.fixture
def smtp(settings, smtp_server):
    """Send through Django's SMTP backend to ``smtp_server`` with a short EMAIL_TIMEOUT."""
    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    settings.EMAIL_HOST = "127.0.0.1"
    settings.EMAIL_PORT = smtp_server.port
    settings.EMAIL_TIMEOUT = 1
    return smtp_server
