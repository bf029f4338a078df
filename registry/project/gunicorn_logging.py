"""gunicorn's logger without secrets in the access log.

A questionnaire link's path is its credential (``/q/<token>/``) and query strings may carry
filters with patient details, so the access log never shows either.
"""

from __future__ import annotations

import re

from gunicorn.glogging import Logger

LINK_TOKEN = re.compile(r"/q/[A-Za-z0-9_-]{20,}")


def redact(path: str) -> str:
    return LINK_TOKEN.sub("/q/<token>", path)


class RedactingLogger(Logger):
    def atoms(self, resp, req, environ, request_time):
        atoms = super().atoms(resp, req, environ, request_time)
        path = redact(environ.get("PATH_INFO", ""))
        atoms["U"] = path
        atoms["q"] = ""
        atoms["r"] = f"{environ['REQUEST_METHOD']} {path} {environ.get('SERVER_PROTOCOL', '')}"
        atoms["f"] = redact(atoms.get("f", "-").split("?", 1)[0])
        return atoms
