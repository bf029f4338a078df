"""The patient's questionnaire link: secrecy, the neutral page, rate limit, steps, submit."""

import base64
import datetime
import re
import threading

import pytest
from django.core import mail
from django.db import connection, connections
from django.urls import reverse
from django.utils import translation

from outcomes.followups.links import link_token, token_hash
from outcomes.followups.sending import contact_attempt_send
from outcomes.followups.sweep import followups_ensure, followups_sweep
from outcomes.instruments.eq5d import eq5d_index
from outcomes.instruments.odi import odi_score
from outcomes.models import FollowUp, LinkFailure, QuestionnaireDraft, QuestionnaireResponse
from outcomes.questionnaire.answers import Submit, questionnaire_submit
from outcomes.questionnaire.items import EQ5D_DIMENSIONS, ODI_SECTIONS
from outcomes.questionnaire.ratelimit import link_failures_prune
from registry.models import Patient
from tests.factories import make_contact, make_patient, make_procedure, make_site
from tests.outcomes.conftest import (
    AFTER_WINDOW,
    ANSWERS,
    IN_WINDOW,
    PROCEDURE_DAY,
    answer_all,
    step_url,
)


def test_invitation_link_carries_a_token_the_database_never_holds(followup, token):
    assert token == link_token(followup)
    assert len(base64.urlsafe_b64decode(token + "=")) * 8 >= 128
    assert followup.link_token_hash == token_hash(token)
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT table_name FROM information_schema.tables WHERE table_schema = 'public'"
        )
        tables = [row[0] for row in cursor.fetchall()]
        holding = []
        for table in tables:
            cursor.execute(
                f'SELECT count(*) FROM "{table}" t WHERE row_to_json(t)::text LIKE %s',  # noqa: S608
                [f"%{token}%"],
            )
            if cursor.fetchone()[0]:
                holding.append(table)
    assert holding == []


def test_link_opens_the_questionnaire_with_no_personal_data(client, followup, token, patient):
    response = client.get(reverse("questionnaire", args=[token]))

    assert response.status_code == 200
    page = response.content.decode()
    assert "3 months" in page
    for personal in (patient.registry_id, "karen@example.org", "1950", patient.site.name):
        assert personal not in page
    followup.refresh_from_db()
    assert followup.link_opened_at == IN_WINDOW


@pytest.mark.parametrize("url_name", ["questionnaire", "questionnaire_review"])
def test_pages_send_no_store_strict_csp_and_no_referrer(client, token, url_name):
    for path in (reverse(url_name, args=[token]), reverse(url_name, args=["x" * 43])):
        response = client.get(path)
        assert "no-store" in response["Cache-Control"]
        assert response["Referrer-Policy"] == "no-referrer"
        csp = response["Content-Security-Policy"]
        assert "default-src 'none'" in csp
        assert "script-src 'self'" in csp
        assert "unsafe-inline" not in csp
        assert "frame-ancestors 'none'" in csp


def neutral(client, token):
    return client.get(reverse("questionnaire", args=[token]))


def test_unknown_expired_cancelled_and_replaced_links_look_the_same(client, followup, token, clock):
    reference = neutral(client, "A" * 43)
    assert reference.status_code == 404
    assert "This link cannot be used" in reference.content.decode()

    cases = {"malformed": neutral(client, "not-a-token")}

    clock.move_to(AFTER_WINDOW)
    cases["expired"] = neutral(client, token)
    clock.move_to(IN_WINDOW)
    assert neutral(client, token).status_code == 200

    FollowUp.objects.filter(pk=followup.pk).update(link_token_hash=token_hash("B" * 43))
    cases["replaced"] = neutral(client, token)
    FollowUp.objects.filter(pk=followup.pk).update(link_token_hash=followup.link_token_hash)
    assert neutral(client, token).status_code == 200

    answer_all(client, token)
    assert client.post(reverse("questionnaire_review", args=[token])).status_code == 302
    # The patient's own submitted link says so (issue 19); only its holder can see that.
    submitted = neutral(client, token)
    assert submitted.status_code == 200
    assert "Your answers have already been received" in submitted.content.decode()

    for name, response in cases.items():
        assert (response.status_code, response.content) == (
            reference.status_code,
            reference.content,
        ), name


def test_link_of_a_patient_who_died_shows_the_neutral_page(client, followup, token, patient):
    Patient.objects.filter(pk=patient.pk).update(date_of_death=IN_WINDOW.date())

    response = neutral(client, token)

    assert response.status_code == 404
    followup.refresh_from_db()
    assert followup.state == FollowUp.State.CANCELLED


def test_repeated_bad_links_are_rate_limited_but_a_real_link_still_opens(client, token, settings):
    settings.QUESTIONNAIRE_BAD_LINK_LIMIT = 3
    statuses = [neutral(client, f"{n:0>43}").status_code for n in range(5)]

    assert statuses == [404, 404, 404, 429, 429]
    assert neutral(client, token).status_code == 200
    other_client = client.get(
        reverse("questionnaire", args=["B" * 43]), REMOTE_ADDR="192.0.2.7"
    ).status_code
    assert other_client == 404


def test_behind_the_proxy_the_bad_link_limit_counts_each_patient(client, token, settings):
    settings.QUESTIONNAIRE_BAD_LINK_LIMIT = 3
    settings.TRUSTED_PROXIES = ["10.0.0.0/24"]
    proxied = {"REMOTE_ADDR": "10.0.0.5"}
    statuses = [
        client.get(
            reverse("questionnaire", args=[f"{n:0>43}"]),
            HTTP_X_FORWARDED_FOR="203.0.113.9",
            **proxied,
        ).status_code
        for n in range(4)
    ]
    assert statuses == [404, 404, 404, 429]
    patient = client.get(
        reverse("questionnaire", args=[token]), HTTP_X_FORWARDED_FOR="198.51.100.7", **proxied
    )
    assert patient.status_code == 200


def test_each_step_is_saved_and_the_link_resumes_where_the_patient_stopped(client, followup, token):
    client.post(step_url(token, "pain"), ANSWERS["pain"])
    client.post(step_url(token, "health"), ANSWERS["health"])

    followup.refresh_from_db()
    assert followup.link_started_at == IN_WINDOW
    assert QuestionnaireDraft.objects.get(followup=followup).answers["eq5d_usual_activities"] == 3
    start = client.get(reverse("questionnaire", args=[token]))
    assert start.context["resuming"] is True
    assert start.context["next_url"] == step_url(token, "health-scale")
    again = client.get(step_url(token, "pain"))
    assert 'value="72"' in again.content.decode()


def test_missing_answers_are_shown_beside_their_questions_and_nothing_is_lost(
    client, followup, token
):
    client.post(step_url(token, "pain"), ANSWERS["pain"])
    partial = dict(ANSWERS["health"])
    del partial["eq5d_self_care"]

    response = client.post(step_url(token, "health"), partial)

    assert response.status_code == 200
    page = response.content.decode()
    assert re.search(
        r'<fieldset[^>]*id="id_eq5d_self_care"[^>]*>\s*<legend>Self-care.*?</legend>\s*'
        r'<p class="error" id="id_eq5d_self_care_error">Please choose one answer.</p>',
        page,
        re.S,
    )
    assert 'aria-describedby="id_eq5d_mobility_error"' not in page
    # The earlier step's answer is kept, and the failed step saved nothing.
    answers = QuestionnaireDraft.objects.get(followup=followup).answers
    assert answers == {"vas_pain": 72}


def test_out_of_range_scale_answer_is_refused_with_a_message(client, token):
    response = client.post(step_url(token, "pain"), {"vas_pain": "140"})

    assert response.status_code == 200
    assert "Please give a number from 0 to 100." in response.content.decode()


def test_submit_scores_the_answers_completes_the_follow_up_and_stops_reminders(
    client, followup, token, clock
):
    answer_all(client, token)
    review = client.get(reverse("questionnaire_review", args=[token]))
    assert review.status_code == 200
    assert "I have moderate problems doing my usual activities" in review.content.decode()

    response = client.post(reverse("questionnaire_review", args=[token]))

    assert response.status_code == 302
    assert response["Location"] == reverse("questionnaire_thanks")
    stored = QuestionnaireResponse.objects.get(procedure=followup.procedure, timepoint="month_3")
    assert stored.mode == "web_link"
    assert stored.entered_by is None
    assert stored.vas_pain == 72
    assert stored.eq_vas == 55
    assert stored.eq5d_state == "21341"
    assert stored.eq5d_value_set == "DK-5L"
    assert float(stored.eq5d_index) == pytest.approx(eq5d_index("21341", "DK-5L"), abs=5e-4)
    assert float(stored.odi_score) == pytest.approx(
        odi_score([3, 2, 4, 2, 1, 3, 2, None, 2, 1]), abs=0.05
    )
    assert stored.odi_sex_life is None
    followup.refresh_from_db()
    assert followup.state == FollowUp.State.COMPLETED
    assert followup.link_submitted_at == IN_WINDOW
    assert not QuestionnaireDraft.objects.filter(followup=followup).exists()

    mail.outbox.clear()
    later = IN_WINDOW + datetime.timedelta(days=20)
    clock.move_to(later)
    for attempt_id in followups_sweep(now=later).attempt_ids:
        contact_attempt_send(attempt_id=attempt_id, now=later)
    assert mail.outbox == []


def test_submit_with_an_unfinished_step_goes_back_to_that_step(client, followup, token):
    client.post(step_url(token, "pain"), ANSWERS["pain"])

    response = client.post(reverse("questionnaire_review", args=[token]))

    assert response.status_code == 302
    assert response["Location"] == step_url(token, "health")
    assert not QuestionnaireResponse.objects.filter(procedure=followup.procedure).exists()


@pytest.mark.django_db(transaction=True)
def test_two_racing_submits_store_exactly_one_response(client, followup, token):
    answer_all(client, token)
    barrier = threading.Barrier(2)
    outcomes = []

    def submit():
        try:
            barrier.wait()
            outcomes.append(questionnaire_submit(token=token, now=IN_WINDOW).outcome)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=submit) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert sorted(o.value for o in outcomes) == [Submit.SUBMITTED.value, Submit.UNAVAILABLE.value]
    assert QuestionnaireResponse.objects.filter(procedure=followup.procedure).count() == 1


def test_page_is_in_the_patients_preferred_language_with_a_switch(client, patient, token):
    patient.contact.preferred_language = "da"
    patient.contact.save()

    danish = client.get(reverse("questionnaire", args=[token]))
    assert '<html lang="da">' in danish.content.decode()
    assert "Dit spørgeskema: 3 måneder" in danish.content.decode()
    step = client.get(step_url(token, "health")).content.decode()
    assert "Jeg har ingen problemer med at gå omkring" in step

    english = client.get(reverse("questionnaire", args=[token]) + "?lang=en")
    assert '<html lang="en">' in english.content.decode()
    assert english.cookies["django_language"].value == "en"
    # The choice sticks for the following pages.
    assert (
        "I have no problems in walking about"
        in client.get(step_url(token, "health")).content.decode()
    )


def test_every_patient_facing_question_and_answer_has_a_danish_translation():
    texts = []
    for _name, heading, three, five in EQ5D_DIMENSIONS:
        texts += [heading, *three, *five]
    for _name, heading, answers in ODI_SECTIONS:
        texts += [heading, *answers]
    with translation.override("en"):
        english = [str(text) for text in texts]
    with translation.override("da"):
        danish = [str(text) for text in texts]
    untranslated = [en for en, da in zip(english, danish, strict=True) if en == da]
    assert untranslated == []


def test_site_on_eq5d_3l_asks_three_level_questions(db, client, clock):
    site = make_site("THR", eq5d_version="3L", eq5d_value_set="UK-3L")
    patient = make_patient(site, consent_date=PROCEDURE_DAY)
    make_contact(patient, email="ole@example.org", preferred_language="en")
    procedure = make_procedure(patient, "osteoporotic", date=PROCEDURE_DAY)
    followups_ensure(procedure_ids=[procedure.pk])
    followups_sweep(now=IN_WINDOW)
    followup = FollowUp.objects.get(procedure=procedure, timepoint="month_3")

    page = client.get(step_url(link_token(followup), "health")).content.decode()

    assert "I am confined to bed" in page
    assert "I have slight problems in walking about" not in page
    assert client.post(step_url(link_token(followup), "health"), ANSWERS["health"]).status_code == (
        200
    )


def test_failure_counts_of_ended_windows_are_pruned(db, clock, client, settings):
    settings.QUESTIONNAIRE_BAD_LINK_WINDOW_SECONDS = 600
    neutral(client, "C" * 43)
    assert LinkFailure.objects.get().count == 1

    assert link_failures_prune(now=IN_WINDOW) == 0
    assert link_failures_prune(now=IN_WINDOW + datetime.timedelta(minutes=10)) == 1
    assert not LinkFailure.objects.exists()
