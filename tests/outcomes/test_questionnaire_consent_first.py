"""A site that asks for re-consent before a questionnaire: a patient whose consent is to a
version that a newer one in force replaced (with re-consent required) is asked to consent
first, and comes back to the questionnaire after."""

import datetime

from django.urls import reverse
from django.utils import timezone

from outcomes.consent.models import ConsentDocument
from outcomes.consent.services import _store


def documents(site, today):
    old = ConsentDocument.objects.create(
        site=site,
        language="en",
        version="1.0",
        title="Consent",
        text="Old text.",
        effective_from=today - datetime.timedelta(days=200),
    )
    new = ConsentDocument.objects.create(
        site=site,
        language="en",
        version="2.0",
        title="Consent",
        text="New text.",
        effective_from=today - datetime.timedelta(days=1),
        requires_reconsent=True,
    )
    return old, new


def test_the_patient_is_asked_to_re_consent_first_and_comes_back(client, followup, token):
    patient = followup.procedure.patient
    site = patient.site
    old, new = documents(site, timezone.localdate())
    start = reverse("questionnaire", args=[token])

    # Without the site's setting, the questionnaire opens as before.
    assert "A new consent first" not in client.get(start).content.decode()
    site.reconsent_before_questionnaire = True
    site.save()
    # No consent recorded here: nothing to re-consent, the questionnaire opens.
    assert "A new consent first" not in client.get(start).content.decode()
    # The consent given to version 1.0 while it was in force.
    _store(
        patient=patient,
        document=old,
        mode="link",
        answers={"agrees_registry": True},
        typed_name="Karen Hansen",
        given_at=timezone.now() - datetime.timedelta(days=100),
    )
    assert "A new consent first" in client.get(start).content.decode()

    moved = client.post(reverse("questionnaire_consent_first", args=[token]))
    assert moved.status_code == 302 and moved["Location"].endswith(f"?next={start}")
    assert "New text." in client.get(moved["Location"]).content.decode()
    given = client.post(
        moved["Location"],
        {"document": new.pk, "agrees_registry": "on", "typed_name": "Karen Hansen"},
    )
    assert given.status_code == 302
    assert f'href="{start}"' in client.get(given["Location"]).content.decode()
    assert "A new consent first" not in client.get(start).content.decode()
    versions = patient.consents.order_by("given_at").values_list("document__version", flat=True)
    assert list(versions) == ["1.0", "2.0"]
