"""The production profile end to end, with real processes (issue 20).

gunicorn (2 sync workers, DEBUG off, static files collected with hashed names), a Celery worker
and beat on Redis (a db number of its own, or a private redis-server when none answers), and
a local SMTP server. A procedure whose 3-month window opens today gets its invitation through
SMTP; the link, opened through gunicorn, completes the questionnaire; the follow-up shows
completed; and `/readyz` answers 200 from the moment the registry is up to the end.
"""

from __future__ import annotations

import datetime
import json
import re
import subprocess
import sys
import threading
import time
from pathlib import Path
from urllib.parse import quote
from zoneinfo import ZoneInfo

import pghistory
import psycopg
import pytest
import requests
from django.conf import settings
from django.db import connection

from api.services import export_log_finish, export_log_start
from outcomes.models import FollowUp, QuestionnaireResponse
from registry.project.celery import app
from registry.project.logs import request_id_var
from tests.factories import make_contact, make_patient, make_procedure, make_site, make_user
from tests.outcomes.conftest import ANSWERS
from tests.roles import app_role, audit_attacks
from tests.services import (
    LOCAL,
    SmtpServer,
    celery_env,
    free_port,
    redis_url_for_test,
    scaled,
    start_beat,
    start_worker,
    wait_for,
)

ROOT = Path(__file__).resolve().parents[2]
REDIS_DB = 12
CHASE_INTERVAL = 2  # seconds: the sweep runs often enough for the test to see it


class Gunicorn:
    def __init__(self, env: dict[str, str], log_path: Path):
        self.port = int(env["PORT"])
        self.base = f"http://{LOCAL}:{self.port}"
        self.log_path = log_path
        with open(log_path, "ab") as log:
            self.process = subprocess.Popen(  # noqa: S603 - fixed argument list
                [
                    sys.executable,
                    "-m",
                    "gunicorn",
                    "-c",
                    "gunicorn.conf.py",
                    "registry.project.wsgi:application",
                ],  # fmt: skip
                cwd=ROOT,
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def wait_answering(self, timeout: float = 30) -> None:
        def answers():
            if self.process.poll() is not None:
                raise RuntimeError(f"gunicorn exited:\n{self.log()[-4000:]}")
            try:
                return requests.get(f"{self.base}/healthz", timeout=scaled(2)).status_code == 200
            except requests.RequestException:  # not listening yet, or workers still booting
                return False

        wait_for(answers, timeout=timeout, what="gunicorn to answer /healthz")

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(5)


class ReadinessWatch(threading.Thread):
    """Polls /readyz every 0.2 s and keeps every answer, so the test can say it was 200 all
    along rather than at a few chosen moments."""

    def __init__(self, base: str):
        super().__init__(daemon=True)
        self.base = base
        self.answers: list[tuple[int, dict]] = []
        self.stopping = threading.Event()

    def run(self) -> None:
        while not self.stopping.is_set():
            try:
                response = requests.get(f"{self.base}/readyz", timeout=scaled(5))
                self.answers.append((response.status_code, response.json()))
            except requests.RequestException as error:
                self.answers.append((0, {"error": str(error)}))
            self.stopping.wait(0.2)

    def stop(self) -> list[tuple[int, dict]]:
        self.stopping.set()
        self.join(10)
        return self.answers


def database_url(settings_dict: dict) -> str:
    """The test database as a URL for the child processes; the host may be a socket directory
    (the embedded server), which goes percent-encoded."""
    user = quote(settings_dict.get("USER") or "", safe="")
    password = quote(settings_dict.get("PASSWORD") or "", safe="")
    auth = f"{user}:{password}@" if password else (f"{user}@" if user else "")
    host = quote(settings_dict.get("HOST") or LOCAL, safe="")
    port = f":{settings_dict['PORT']}" if settings_dict.get("PORT") else ""
    return f"postgres://{auth}{host}{port}/{settings_dict['NAME']}"


def mail_text(message) -> str:
    parts = message.walk() if message.is_multipart() else [message]
    return "\n".join(
        part.get_payload(decode=True).decode(part.get_content_charset() or "utf-8")
        for part in parts
        if part.get_content_type() == "text/plain"
    )


@pytest.fixture
def production(transactional_db, tmp_path):
    """The registry as docs/operations.md runs it — web, worker and beat connected as the
    application's role, not the tables' owner; yields (base URL, SMTP server, processes)."""
    with redis_url_for_test(REDIS_DB) as redis_url, SmtpServer() as smtp, app_role() as role:
        port = free_port()
        env = celery_env(
            DEBUG="0",
            SECRET_KEY=settings.SECRET_KEY,
            DATABASE_URL=database_url({**connection.settings_dict, "USER": role, "PASSWORD": ""}),
            CELERY_BROKER_URL=redis_url,
            CHASE_INTERVAL_SECONDS=CHASE_INTERVAL,
            EMAIL_BACKEND="django.core.mail.backends.smtp.EmailBackend",
            EMAIL_HOST=LOCAL,
            EMAIL_PORT=smtp.port,
            SITE_URL=f"http://{LOCAL}:{port}",
            ALLOWED_HOSTS=LOCAL,
            HOST=LOCAL,
            PORT=port,
            WEB_CONCURRENCY=2,
            STATIC_MANIFEST="1",
            STATIC_ROOT=tmp_path / "static",
            LOG_FORMAT="json",
            DB_CONN_MAX_AGE=60,
        )
        started = time.monotonic()
        # Collecting (and compressing) the static files runs while Celery starts; gunicorn
        # starts after it, as whitenoise indexes STATIC_ROOT when a worker boots.
        collect = subprocess.Popen(  # noqa: S603 - fixed argument list
            [sys.executable, "manage.py", "collectstatic", "--noinput", "--verbosity=0"],
            cwd=ROOT, env=env,
        )  # fmt: skip
        processes = []
        try:
            worker = start_worker(
                app="registry", env=env, workdir=tmp_path, concurrency=1, wait=False
            )
            processes.append(worker)
            beat = start_beat(app="registry", env=env, workdir=tmp_path)
            processes.append(beat)
            assert collect.wait(scaled(120)) == 0  # compressing every file: slow when busy
            web = Gunicorn(env, tmp_path / "gunicorn.log")
            processes.append(web)
            worker.wait_ready()
            web.wait_answering()
            print(f"production processes up in {time.monotonic() - started:.1f} s")
            yield web.base, smtp, {
                "web": web, "worker": worker, "beat": beat, "redis": redis_url, "role": role,
                "database_url": env["DATABASE_URL"],
            }  # fmt: skip
        finally:
            if collect.poll() is None:
                collect.kill()
            # Stopped side by side: each warm shutdown takes a few seconds.
            stopping = [threading.Thread(target=process.stop) for process in processes]
            for thread in stopping:
                thread.start()
            for thread in stopping:
                thread.join(30)
            connection.close()
            with connection.cursor() as cursor:  # sessions the children left behind
                cursor.execute(
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
                    " WHERE datname = current_database() AND pid <> pg_backend_pid()"
                )


def test_due_invitation_arrives_by_smtp_and_its_link_completes_the_questionnaire(production):
    base, smtp, processes = production

    # The web is ready once migrated; the chasing is healthy once beat's first sweep has run
    # through the worker.
    last = {}

    def ready():
        answer = requests.get(f"{base}/readyz", timeout=scaled(5))
        chasing = requests.get(f"{base}/healthz/chasing", timeout=scaled(5))
        last.update(readyz=answer.json(), chasing=chasing.json())
        return answer.status_code == 200 and chasing.status_code == 200

    try:
        wait_for(ready, timeout=30, what="/readyz and /healthz/chasing 200")
    except TimeoutError:
        logs = {
            name: process.log()[-3000:]
            for name, process in processes.items()
            if hasattr(process, "log")
        }
        raise AssertionError(f"not ready: {last}\n{logs}") from None
    phase = time.monotonic()
    watch = ReadinessWatch(base)
    watch.start()

    # Given a procedure whose 3-month window (days 70-120) opens today at the site.
    site = make_site("AAR", time_zone="Europe/Copenhagen")
    today = datetime.datetime.now(ZoneInfo(site.time_zone)).date()
    patient = make_patient(site, consent_date=today - datetime.timedelta(days=80))
    make_contact(patient, email="patient@example.org", preferred_language="en")
    procedure = make_procedure(patient, "osteoporotic", date=today - datetime.timedelta(days=70))

    # When beat's next sweep runs, the invitation goes out through the SMTP server.
    (received,) = wait_for(lambda: smtp.messages, timeout=20, what="the invitation email")
    assert received.rcpt_tos == ["patient@example.org"]
    assert "3 months" in received.header("Subject")
    (link,) = re.findall(rf"{re.escape(base)}/q/[A-Za-z0-9_-]{{43}}/", mail_text(received.message))

    # And the patient answers every step through gunicorn and submits.
    browser = requests.Session()
    start = browser.get(link, timeout=10)
    assert start.status_code == 200
    stylesheet = re.search(r'href="(/static/questionnaire/questionnaire\.[0-9a-f]{12}\.css)"',
                           start.text)  # fmt: skip
    assert stylesheet, "the page links the hashed stylesheet"
    for slug, answers in ANSWERS.items():
        step = browser.post(f"{link}{slug}/", data=answers, timeout=10)
        assert step.status_code == 200, step.text[:500]
        assert step.history[0].status_code == 302
    done = browser.post(f"{link}check/", timeout=10)
    assert done.url == f"{base}/q/thanks/"
    assert done.status_code == 200

    # Then the follow-up is completed with a scored response, and no reminder is queued.
    followup = FollowUp.objects.get(procedure=procedure, timepoint="month_3")
    assert followup.state == FollowUp.State.COMPLETED
    assert followup.link_submitted_at is not None
    response = QuestionnaireResponse.objects.get(procedure=procedure, timepoint="month_3")
    assert (response.vas_pain, response.mode) == (72, "web_link")
    assert response.eq5d_index is not None and response.odi_score is not None
    assert followup.attempts.get().status == "sent"
    assert len(smtp.messages) == 1

    # Static files: whitenoise serves the hashed name compressed and cacheable for a year.
    css = requests.get(f"{base}{stylesheet.group(1)}", timeout=5,
                       headers={"Accept-Encoding": "gzip"})  # fmt: skip
    assert css.status_code == 200
    assert css.headers["Content-Encoding"] == "gzip"
    assert "immutable" in css.headers["Cache-Control"]

    print(f"invited and answered in {time.monotonic() - phase:.1f} s")
    # /readyz answered 200 all along, with every check passing, through several sweeps.
    # At least two more sweep intervals and ten answers: on a busy machine each answer can
    # take seconds, so the watch is given time by count, not by the clock alone.
    time.sleep(2 * CHASE_INTERVAL)
    wait_for(lambda: len(watch.answers) >= 10, timeout=30, what="ten /readyz answers")
    answers = watch.stop()
    assert len(answers) >= 10
    assert {status for status, _body in answers} == {200}, answers
    assert set(answers[-1][1]["checks"]) == {"database", "migrations"}
    chasing = requests.get(f"{base}/healthz/chasing", timeout=scaled(5))
    assert chasing.status_code == 200, chasing.text
    last = chasing.json()["checks"]
    assert last["broker"]["ok"]
    assert last["chase_sweep"]["age_seconds"] <= scaled(2 * CHASE_INTERVAL)

    # A task queued while a request runs carries its id into the worker's log lines.
    token_var = request_id_var.set("e2e-request-0001")
    try:
        with app.connection_for_write(processes["redis"]) as conn:
            app.send_task("outcomes.chase_followups", connection=conn)
    finally:
        request_id_var.reset(token_var)

    def task_logged():
        return [
            line
            for line in processes["worker"].log().splitlines()
            if '"request_id": "e2e-request-0001"' in line and "succeeded" in line
        ]

    (task_line,) = wait_for(task_logged, timeout=20, what="the task's log line")
    assert json.loads(task_line)["logger"] == "celery.app.trace"

    # The web log is JSON, one line per request, naming routes, never the link's token.
    web_log = processes["web"].log()
    token = link.rstrip("/").rsplit("/", 1)[-1]
    assert token not in web_log
    assert token not in processes["worker"].log()
    request_lines = [
        json.loads(line)
        for line in web_log.splitlines()
        if line.startswith("{") and '"logger": "registry.requests"' in line
    ]
    steps = [line for line in request_lines if line["route"] == "questionnaire_step"]
    # Each step's POST, and the GET of the next step it redirects to (the last goes to check).
    methods = [line["method"] for line in steps]
    assert (methods.count("POST"), methods.count("GET")) == (len(ANSWERS), len(ANSWERS) - 1)
    assert all(re.fullmatch(r"[0-9a-f]{32}", line["request_id"]) for line in steps)
    assert all(line["duration_ms"] >= 0 and line["status"] in (200, 302) for line in steps)

    # The processes ran as the application's role, which cannot rewrite the audit trail:
    # no TRUNCATE, no DISABLE or DROP TRIGGER, no UPDATE or DELETE, whatever it sets.
    with pghistory.context(user=None, url="/admin/"):
        make_contact(make_patient(site), email="second@example.org")  # a past context
    log = export_log_start(
        user=make_user("Auditor"), kind="export", resource="levels.csv", filters={}
    )
    export_log_finish(log=log, rows=1, completed=True)
    with psycopg.connect(processes["database_url"]) as db:
        assert db.execute("SELECT current_user").fetchone()[0] == processes["role"]
        assert db.execute("SELECT count(*) FROM registry_patientevent").fetchone()[0] >= 1
        db.rollback()
        attacks = audit_attacks()
        assert len(attacks) >= 7 * 14
        for attack in attacks:
            with pytest.raises(psycopg.Error) as refusal:
                db.execute(attack)
            db.rollback()
            assert re.search(
                "permission denied|must be owner|audit trail cannot be changed", str(refusal.value)
            ), (attack, refusal.value)
