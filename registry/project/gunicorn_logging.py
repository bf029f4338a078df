"""gunicorn's logger without secrets in the access log.

A questionnaire link's path is its credential (``/q/<token>/``) and query strings may carry
filters with patient details, so no atom of the access log shows either, whichever the
format names (the request line, the path, the referrer, raw environ and header atoms); and
gunicorn's error log, which quotes malformed request lines, is redacted too.
"""

from __future__ import annotations

from gunicorn.glogging import Logger

from registry.project.redaction import RedactTokensFilter, redact

_QUERY_ATOMS = ("q", "{query_string}e")
_URL_ATOMS = ("f", "{raw_uri}e", "{http_referer}e", "{referer}i")


class RedactingLogger(Logger):
    def setup(self, cfg) -> None:
        """gunicorn's own error log (e.g. ``Invalid HTTP request line: 'GET /q/<token>/…'``)
        goes through the same redaction as every application log handler."""
        super().setup(cfg)
        for log in (self.error_log, self.access_log):
            for handler in log.handlers:
                if not any(isinstance(f, RedactTokensFilter) for f in handler.filters):
                    handler.addFilter(RedactTokensFilter())

    def atoms(self, resp, req, environ, request_time):
        atoms = super().atoms(resp, req, environ, request_time)
        for key, value in atoms.items():
            if isinstance(value, str):
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
