"""The one-command demo: database, migrations, demo cohort, web server, worker and scheduler.

``python -m registry.project.launcher`` (what ``make run`` calls). Without ``DATABASE_URL`` it
starts the embedded PostgreSQL under ``var/``; without ``CELERY_BROKER_URL`` Celery uses a
filesystem queue under ``var/``, so nothing has to be installed by hand. Ctrl-C stops
everything it started.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

BASE_DIR = Path(__file__).resolve().parents[2]


def main() -> int:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "registry.project.settings")
    os.environ.setdefault("DEBUG", "1")
    host = os.getenv("HOST", "127.0.0.1")
    port = os.getenv("PORT", "8000")
    os.environ.setdefault("SITE_URL", f"http://{host}:{port}")
    (BASE_DIR / "var").mkdir(exist_ok=True)

    from registry.project.embedded_db import ensure_database_url

    ensure_database_url()

    import django
    from django.core.management import call_command

    django.setup()
    call_command("migrate", interactive=False, verbosity=0)
    # seed_demo also runs the outcomes app's seed_demo_outcomes (follow-ups, answers, chasing).
    call_command("seed_demo", patients=int(os.getenv("DEMO_PATIENTS", "300")))

    from registry.demo import DEMO_PASSWORD

    python = sys.executable
    children = [
        subprocess.Popen(  # noqa: S603 - fixed argument lists
            [python, "manage.py", "runserver", f"{host}:{port}", "--noreload"], cwd=BASE_DIR
        ),
        *start_celery(python),
    ]
    mail_dir = Path(os.getenv("EMAIL_FILE_PATH", BASE_DIR / "var" / "mail"))
    print(
        "\n"
        f"  Registry running at  http://{host}:{port}/admin/\n"
        f"  Log in as            nurse.aar / {DEMO_PASSWORD}   (site staff, Aarhus)\n"
        f"                       manager / {DEMO_PASSWORD}     (registry manager, all sites)\n"
        f"  Outgoing email       {mail_dir}/\n"
        "  Patient questionnaire: follow the link in an invitation email there (the worker\n"
        "                       sends them within a minute); it opens on any phone-sized browser.\n"
        f"  API docs             http://{host}:{port}/api/docs/ ; a token for the London auditor:\n"
        "                       .venv/bin/python manage.py create_api_token auditor.ldn\n"
        "  Stop with Ctrl-C.\n",
        flush=True,
    )
    return wait_for(children)


def start_celery(python: str) -> list[subprocess.Popen]:
    var = BASE_DIR / "var"
    for folder in ("celery-broker", "celery-processed", "celery-control"):
        (var / folder).mkdir(exist_ok=True)
    worker = [python, "-m", "celery", "-A", "registry", "worker", "--loglevel=INFO"]
    # Both queues: the sweep's own and the sends' (settings.CELERY_TASK_QUEUES).
    worker += ["--concurrency=2", "--pool=prefork", "--queues=chase,celery"]
    beat = [python, "-m", "celery", "-A", "registry", "beat", "--loglevel=INFO"]
    beat += [f"--schedule={var / 'celerybeat-schedule'}"]
    return [
        subprocess.Popen(worker, cwd=BASE_DIR),  # noqa: S603
        subprocess.Popen(beat, cwd=BASE_DIR),  # noqa: S603
    ]


def wait_for(children: list[subprocess.Popen]) -> int:
    def stop(*_args):
        for child in children:
            if child.poll() is None:
                child.terminate()

    signal.signal(signal.SIGTERM, stop)
    try:
        # Ctrl-C ends the wait; the children are stopped below either way.
        with contextlib.suppress(KeyboardInterrupt):
            while all(child.poll() is None for child in children):
                time.sleep(0.5)
    finally:
        stop()
        for child in children:
            try:
                child.wait(timeout=10)
            except subprocess.TimeoutExpired:
                child.kill()
    return 0


if __name__ == "__main__":
    sys.exit(main())
