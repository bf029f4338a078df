"""The pure rules of the SMS channel (outcomes.followups.texting) and the texts themselves:
channel choice, segment arithmetic (3GPP TS 23.038/23.040), at most two segments whatever the
clinic's name or the language."""

from __future__ import annotations

import datetime

import pytest
from django.utils import translation

from outcomes.followups import texting
from outcomes.followups.messages import patient_text
from outcomes.models import FollowUp
from registry.models import Patient, Procedure, Site


@pytest.mark.parametrize(
    ("preferred", "email", "sms", "channel"),
    [
        ("email", True, True, "email"),
        ("email", False, True, "sms"),
        ("email", False, False, None),
        ("sms", True, True, "sms"),
        ("sms", True, False, "email"),
        ("sms", False, False, None),
        ("none", True, True, None),
    ],
)
def test_channel_choice(preferred, email, sms, channel):
    assert texting.channel_choose(preferred=preferred, email=email, sms=sms) == channel


@pytest.mark.parametrize(
    ("text", "count"),
    [
        ("a" * 160, 1),
        ("a" * 161, 2),
        ("a" * 306, 2),
        ("a" * 307, 3),
        ("æøåÆØÅ" * 26 + "abcd", 1),  # Danish letters are in the GSM-7 alphabet: 160
        ("€" * 80, 1),  # extension characters take two septets: 160
        ("€" * 81, 2),
        ("ł" + "a" * 69, 1),  # one character outside GSM-7: UCS-2, 70 per message
        ("ł" + "a" * 70, 2),
        ("ł" + "a" * 133, 2),  # 67 per segment
        ("ł" + "a" * 134, 3),
    ],
)
def test_segments(text, count):
    assert texting.segments(text) == count


def followup(clinic: str) -> FollowUp:
    site = Site(code="X", name=clinic, time_zone="Europe/Copenhagen")
    procedure = Procedure(patient=Patient(site=site))
    return FollowUp(
        procedure=procedure, timepoint="month_12", window_end=datetime.date(2026, 12, 31)
    )


URL = "https://registry.region-example.dk/q/" + "A" * 43 + "/"


@pytest.mark.parametrize("language", ["da", "en"])
@pytest.mark.parametrize("kind", ["invitation", "reminder_1", "reminder_2"])
@pytest.mark.parametrize(
    "clinic",
    ["Rygklinik", "Ortopædkirurgisk Afdeling – Aarhus Universitetshospital, Skejby " * 2],
)
def test_texts_are_gsm7_at_most_two_segments_with_the_whole_link(language, kind, clinic):
    with translation.override(language):
        text = patient_text(kind, followup(clinic), URL)
    assert URL in text
    assert texting.is_gsm7(text), [c for c in text if not texting.is_gsm7(c)]
    assert texting.segments(text) <= texting.MAX_SEGMENTS
    assert "STOP" in text
