"""/healthz, /readyz and the chasing figures on the admin home page."""

import datetime

import pytest
import time_machine
from django.db import connection
from django.db.migrations.loader import MigrationLoader
from django.db.migrations.recorder import MigrationRecorder
from django.utils import timezone

from outcomes.health import checks
from outcomes.models import ContactAttempt, SweepRun
from outcomes.tasks import chase_followups
from registry.project.celery import app
from tests.factories import make_contact, make_patient, make_procedure, make_site
from tests.services import RedisServer

NOW = datetime.datetime(2026, 3, 2, 9, 0, tzinfo=datetime.UTC)


@pytest.fixture
def broker(monkeypatch):
    """An in-process kombu broker, so readiness does not depend on a server here; the
    end-to-end test runs the same check against Redis."""
    monkeypatch.setattr(app.conf, "broker_write_url", "memory://")
    yield app
    # The memory transport lives as long as the process: leave no queued sends behind.
    with app.connection_for_write() as conn:
        conn.default_channel.queue_purge(checks.DEFAULT_QUEUE)


@pytest.fixture
def unreachable_broker(monkeypatch):
    # Port 1 on loopback: nothing listens, the connection is refused at once.
    monkeypatch.setattr(app.conf, "broker_write_url", "redis://127.0.0.1:1/0")


@pytest.fixture
def fresh_migration_check(monkeypatch):
    monkeypatch.setattr(checks, "_migrations_applied", False)


def swept(at: datetime.datetime) -> None:
    checks.sweep_record(started_at=at, finished_at=at, actions=3, messages=2)


def test_healthz_answers_without_touching_the_database(client):
    # No django_db mark: any query here raises "Database access not allowed".
    response = client.get("/healthz")
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}
    assert response["Cache-Control"].startswith("max-age=0")


@pytest.mark.django_db
def test_readyz_is_200_when_the_database_is_up_and_migrated(client, fresh_migration_check):
    response = client.get("/readyz")
    assert response.status_code == 200
    assert response.json() == {
        "status": "ok",
        "checks": {
            "database": {"ok": True},
            "migrations": {"ok": True, "unapplied": 0, "first": []},
        },
    }


@pytest.mark.django_db
def test_chasing_health_is_200_when_broker_sweep_and_backlog_are_fine(client, broker):
    with time_machine.travel(NOW, tick=False):
        swept(NOW - datetime.timedelta(seconds=60))
        response = client.get("/healthz/chasing")
    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "ok"
    assert body["checks"]["broker"] == {
        "ok": True,
        "queue_depth": 0,
        "queues": {"chase": 0, "celery": 0},
    }
    assert body["checks"]["chase_sweep"]["age_seconds"] == 60.0
    assert body["checks"]["backlog"] == {
        "ok": True,
        "due": 0,
        "oldest_due_seconds": 0.0,
        "alert_after_seconds": 3600,
    }


@pytest.mark.django_db
def test_before_the_first_sweep_readyz_is_200_and_chasing_alerts(client, broker):
    assert client.get("/readyz").status_code == 200
    response = client.get("/healthz/chasing")
    assert response.status_code == 503
    body = response.json()
    assert body["status"] == "alerting"
    assert body["checks"]["chase_sweep"]["ok"] is False
    assert body["checks"]["broker"]["ok"] is True


@pytest.mark.django_db
def test_chasing_alerts_when_the_last_sweep_is_older_than_two_intervals(client, broker):
    interval = checks.chase_interval_seconds()
    with time_machine.travel(NOW, tick=False):
        swept(NOW - datetime.timedelta(seconds=2 * interval - 1))
        assert client.get("/healthz/chasing").status_code == 200
        swept(NOW - datetime.timedelta(seconds=2 * interval + 1))
        response = client.get("/healthz/chasing")
        assert client.get("/readyz").status_code == 200
    assert response.status_code == 503
    assert response.json()["checks"]["chase_sweep"]["age_seconds"] == 2 * interval + 1


@pytest.mark.django_db
def test_chasing_alerts_when_a_message_waits_longer_than_the_backlog_limit(
    client, broker, site_a, settings
):
    settings.CHASE_BACKLOG_ALERT_SECONDS = 600
    swept(NOW)
    for minutes in (5, 11):
        ContactAttempt.objects.create(
            site=site_a,
            kind="digest",
            digest_date=NOW.date() - datetime.timedelta(days=minutes),
            next_try_at=NOW - datetime.timedelta(minutes=minutes),
        )
    with time_machine.travel(NOW, tick=False):
        response = client.get("/healthz/chasing")
        assert client.get("/readyz").status_code == 200
    assert response.status_code == 503
    assert response.json()["checks"]["backlog"] == {
        "ok": False,
        "due": 2,
        "oldest_due_seconds": 660.0,
        "alert_after_seconds": 600,
    }


@pytest.mark.django_db
def test_unreachable_broker_alerts_chasing_and_leaves_readyz_200(
    client, unreachable_broker, caplog
):
    swept(timezone.now())
    assert client.get("/readyz").status_code == 200
    response = client.get("/healthz/chasing")
    assert response.status_code == 503
    broker_check = response.json()["checks"]["broker"]
    # The public answer names the kind of failure; the details (host, port) go to the log.
    assert broker_check == {"ok": False, "error": "OperationalError"}
    assert "127.0.0.1:1" not in response.content.decode()
    (logged,) = [r for r in caplog.records if r.name == "outcomes.health.checks"]
    assert "refused" in logged.getMessage().lower()


@pytest.mark.django_db
def test_readyz_stays_200_with_a_backlog_queued_and_the_broker_stopped(client, monkeypatch, site_a):
    # The adversary: a Redis outage (or a long queue) must not take the web tier out of the
    # load balancer; patients' links need only the database. Alerting sees both.
    backlog = 30
    with RedisServer() as redis:
        monkeypatch.setattr(app.conf, "broker_write_url", redis.url())
        swept(timezone.now())
        an_hour_ago = timezone.now() - datetime.timedelta(hours=1, minutes=1)
        for days in range(backlog):
            ContactAttempt.objects.create(
                site=site_a,
                kind="digest",
                digest_date=NOW.date() - datetime.timedelta(days=days),
                next_try_at=an_hour_ago,
            )
        with app.connection_for_write() as conn:
            for attempt_id in ContactAttempt.objects.values_list("pk", flat=True):
                app.send_task("outcomes.send_contact_attempt", (attempt_id,), connection=conn)

        assert client.get("/readyz").status_code == 200
        chasing = client.get("/healthz/chasing")
        assert chasing.status_code == 503
        found = chasing.json()["checks"]
        assert found["broker"] == {
            "ok": True,
            "queue_depth": backlog,
            "queues": {"chase": 0, "celery": backlog},
        }
        assert (found["backlog"]["ok"], found["backlog"]["due"]) == (False, backlog)
        assert found["chase_sweep"]["ok"] is True

        redis.stop()
        assert client.get("/readyz").status_code == 200
        chasing = client.get("/healthz/chasing")
        assert chasing.status_code == 503
        found = chasing.json()["checks"]
        assert found["broker"]["ok"] is False
        assert (found["backlog"]["due"], found["chase_sweep"]["ok"]) == (backlog, True)


@pytest.mark.django_db
def test_readyz_is_503_while_a_migration_is_not_applied(client, broker, fresh_migration_check):
    swept(timezone.now())
    # The newest migration, as after deploying code before running migrate.
    ((app_label, name),) = MigrationLoader(connection).graph.leaf_nodes("outcomes")
    MigrationRecorder(connection).record_unapplied(app_label, name)
    response = client.get("/readyz")
    assert response.status_code == 503
    migrations = response.json()["checks"]["migrations"]
    assert migrations == {"ok": False, "unapplied": 1, "first": [f"outcomes.{name}"]}


@pytest.mark.django_db
def test_the_periodic_sweep_records_when_it_finished(broker):
    site = make_site("AAR")
    patient = make_patient(site, consent_date=datetime.date(2025, 11, 20))
    make_contact(patient, email="p@example.org")
    make_procedure(patient, "osteoporotic", date=datetime.date(2025, 12, 1))
    with time_machine.travel(NOW, tick=False):
        result = chase_followups()
    run = SweepRun.objects.get(name=checks.CHASE_SWEEP)
    assert run.finished_at == NOW
    assert (run.actions, run.messages) == (result["actions"], result["dispatched"])
    assert run.messages == 1  # the 3-month invitation; the baseline is taken in clinic


@pytest.mark.django_db
def test_admin_home_shows_last_sweep_queue_depth_unsent_and_unknown_apart(
    client, manager, broker, site_a, site_b
):
    swept(NOW)
    ContactAttempt.objects.create(site=site_a, kind="digest", digest_date=NOW.date())
    ContactAttempt.objects.create(
        site=site_b, kind="digest", digest_date=NOW.date(), status="failed"
    )
    for days in (2, 3):
        ContactAttempt.objects.create(
            site=site_a,
            kind="digest",
            digest_date=NOW.date() - datetime.timedelta(days=days),
            status="unknown",
        )
    ContactAttempt.objects.create(
        site=site_b,
        kind="digest",
        digest_date=NOW.date() - datetime.timedelta(days=1),
        status="sent",
    )
    client.force_login(manager)
    page = client.get("/admin/").content.decode()
    sweep = '<td id="last-sweep">2026-03-02 10:00:00 CET (2 messages) <strong>overdue</strong>'
    assert sweep in page
    assert '<td id="queue-depth">0</td>' in page
    assert '<td id="unsent-attempts">2 (1 failed)</td>' in page
    # The unknown need a person (mark sent, or send again): their own line, linked to them.
    assert '<td id="unknown-attempts"><strong>2</strong> (mark sent, or send again)</td>' in page
    assert "/admin/outcomes/contactattempt/?status__exact=unknown" in page
    assert '?status__in=pending,sending,failed">' in page


@pytest.mark.django_db
def test_admin_home_counts_only_the_users_sites_and_says_when_the_broker_is_down(
    client, staff_a, site_b, unreachable_broker
):
    ContactAttempt.objects.create(site=site_b, kind="digest", digest_date=NOW.date())
    client.force_login(staff_a)
    page = client.get("/admin/").content.decode()
    assert '<td id="last-sweep">never <strong>overdue</strong></td>' in page
    assert '<td id="queue-depth">broker unreachable</td>' in page
    assert '<td id="unsent-attempts">0</td>' in page
