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
def test_readyz_is_200_when_every_check_passes(client, broker, fresh_migration_check):
    with time_machine.travel(NOW, tick=False):
        swept(NOW - datetime.timedelta(seconds=60))
        response = client.get("/readyz")
    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "ok"
    assert body["checks"]["database"] == {"ok": True}
    assert body["checks"]["migrations"]["unapplied"] == 0
    assert body["checks"]["broker"] == {"ok": True, "queue_depth": 0}
    assert body["checks"]["chase_sweep"]["age_seconds"] == 60.0


@pytest.mark.django_db
def test_readyz_is_503_before_the_first_sweep(client, broker):
    response = client.get("/readyz")
    assert response.status_code == 503
    body = response.json()
    assert body["status"] == "unavailable"
    assert body["checks"]["chase_sweep"]["ok"] is False
    assert body["checks"]["database"]["ok"] is True


@pytest.mark.django_db
def test_readyz_is_503_when_the_last_sweep_is_older_than_two_intervals(client, broker, settings):
    interval = checks.chase_interval_seconds()
    with time_machine.travel(NOW, tick=False):
        swept(NOW - datetime.timedelta(seconds=2 * interval - 1))
        assert client.get("/readyz").status_code == 200
        swept(NOW - datetime.timedelta(seconds=2 * interval + 1))
        response = client.get("/readyz")
    assert response.status_code == 503
    assert response.json()["checks"]["chase_sweep"]["age_seconds"] == 2 * interval + 1


@pytest.mark.django_db
def test_readyz_is_503_when_the_broker_is_unreachable(client, unreachable_broker, caplog):
    swept(timezone.now())
    response = client.get("/readyz")
    assert response.status_code == 503
    broker_check = response.json()["checks"]["broker"]
    # The public answer names the kind of failure; the details (host, port) go to the log.
    assert broker_check == {"ok": False, "error": "OperationalError"}
    assert "127.0.0.1:1" not in response.content.decode()
    (logged,) = [r for r in caplog.records if r.name == "outcomes.health.checks"]
    assert "refused" in logged.getMessage().lower()


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
def test_admin_home_shows_last_sweep_queue_depth_and_unsent_messages(
    client, manager, broker, site_a, site_b
):
    swept(NOW)
    ContactAttempt.objects.create(site=site_a, kind="digest", digest_date=NOW.date())
    ContactAttempt.objects.create(
        site=site_b, kind="digest", digest_date=NOW.date(), status="failed"
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
    assert '?status__in=pending,sending,failed,unknown">' in page


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
