"""docs/configuration.md names every environment variable the registry reads, so an operator
never has to read settings.py to find one."""

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
# The modules that read the environment to configure the registry and its processes.
SOURCES = [
    "registry/project/settings.py",
    "registry/project/launcher.py",
    "registry/project/celery.py",
    "registry/project/embedded_db.py",
    "gunicorn.conf.py",
]
# os.getenv("X"…), os.environ.get("X"…), os.environ["X"], env_int("X"…) and the like, with the
# name on the same line or the next.
READ = re.compile(
    r"""(?:getenv|environ\.get|environ\.setdefault|environ\[|\benv_\w+\()\s*\(?\s*["']([A-Z][A-Z0-9_]+)["']"""
)


def variables_read() -> set[str]:
    names = set()
    for source in SOURCES:
        names.update(READ.findall((ROOT / source).read_text(encoding="utf-8")))
    return names - {"DJANGO_SETTINGS_MODULE"}


def test_every_environment_variable_read_is_on_the_configuration_page():
    page = (ROOT / "docs" / "configuration.md").read_text(encoding="utf-8")
    documented = set(re.findall(r"`([A-Z][A-Z0-9_]+)`", page))
    read = variables_read()
    assert {"SECRET_KEY", "DATABASE_URL", "WEB_CONCURRENCY", "CHASE_INTERVAL_SECONDS"} <= read
    assert sorted(read - documented) == []
