"""gunicorn's logger without secrets in the access log.

A questionnaire link's path is its credential (``/q/<token>/``) and query strings may carry
filters with patient details, so no atom of the access log shows either, whichever the
format names (the request line, the path, the referrer, raw environ and header atoms).
"""

from __future__ import annotations

from gunicorn.glogging import Logger

from registry.project.redaction import redact

_QUERY_ATOMS = ("q", "{query_string}e")
_URL_ATOMS = ("f", "{raw_uri}e", "{http_referer}e", "{referer}i")


class RedactingLogger(Logger):
    def atoms(self, resp, req, environ, request_time):
        atoms = super().atoms(resp, req, environ, request_time)
        for key, value in atoms.items():
            if isinstance(value, str) and "/q/" in value:
                atoms[key] = redact(value)
        for key in _QUERY_ATOMS:
            if key in atoms:
                atoms[key] = ""
        for key in _URL_ATOMS:
            if isinstance(atoms.get(key), str):
                atoms[key] = atoms[key].split("?", 1)[0]
        path = redact(environ.get("PATH_INFO", ""))
        atoms["U"] = path
        atoms["r"] = f"{environ['REQUEST_METHOD']} {path} {environ.get('SERVER_PROTOCOL', '')}"
        return atoms
