"""gunicorn settings for the registry: `gunicorn -c gunicorn.conf.py registry.project.wsgi`.

Every value comes from the environment (docs/configuration.md). Sync workers: the
requests are short and database-bound, and a CSV export streams from one worker without
holding others up.
"""

import gc
import logging
import multiprocessing
import os
import sys

bind = os.getenv("BIND", f"{os.getenv('HOST', '127.0.0.1')}:{os.getenv('PORT', '8000')}")
workers = int(os.getenv("WEB_CONCURRENCY", str(min(2 * multiprocessing.cpu_count() + 1, 8))))
threads = int(os.getenv("WEB_THREADS", "1"))
# A sync worker silent this long is killed and replaced. A 1M-row export streams in ~7 s;
# the default leaves room for ten times that.
timeout = int(os.getenv("WEB_TIMEOUT", "120"))
graceful_timeout = int(os.getenv("WEB_GRACEFUL_TIMEOUT", "30"))
keepalive = int(os.getenv("WEB_KEEPALIVE", "5"))
# Load the application once in the master and fork the workers from it: a recycled worker
# starts in milliseconds instead of importing Django, DRF, NumPy and SciPy again (about a
# second of CPU while it serves nothing). Safe here: nothing opens a database connection or a
# thread at import time; each worker opens its own connections on first use.
preload_app = True
# A worker recycled under load cost two stalls, measured by the mixed-load benchmark
# (tests/benchmarks/test_mixed_load_benchmark.py; docs/benchmarks.md): its first request
# imported the URL configuration and through it every view, DRF and the exports (2-3 s of CPU,
# 15 s at load 9 on 2 cores), and its exit tore down a 280 MB heap object by object (5 s),
# during which the master does not start its replacement. Both are taken out below.
# Workers are not recycled unless WEB_MAX_REQUESTS says so (no leak has been measured). When
# set, the jitter is half the limit: with 10% jitter, workers started together under a steady
# load recycled within seconds of each other and the whole tier paused at once (p99 27.9 s).
max_requests = int(os.getenv("WEB_MAX_REQUESTS", "0"))
max_requests_jitter = int(os.getenv("WEB_MAX_REQUESTS_JITTER", str(max_requests // 2)))
# Addresses of the reverse proxies whose X-Forwarded-* headers are believed.
forwarded_allow_ips = os.getenv("FORWARDED_ALLOW_IPS", "127.0.0.1")

# The access log: method, path without its query string and with any questionnaire-link token
# replaced by [redacted], status, bytes, milliseconds, request id. With LOG_FORMAT=json the
# application writes a JSON line per request instead (registry.project.logs).
logger_class = "registry.project.gunicorn_logging.RedactingLogger"
access_log_format = '%(h)s "%(m)s %(U)s" %(s)s %(B)s %(M)sms %({x-request-id}o)s'
accesslog = None if os.getenv("LOG_FORMAT", "text") == "json" else "-"
errorlog = "-"
loglevel = os.getenv("LOG_LEVEL", "INFO").lower()


def when_ready(server) -> None:
    """In the master, once the application is loaded and before the first worker is forked:
    import the URL configuration (every view module behind it), so a worker serves its first
    request at once, and freeze the objects made so far, so the garbage collector in a worker
    never walks (and copies) the pages shared with the master. Opens no database connection."""
    if not server.cfg.preload_app:
        return
    from django.urls import get_resolver

    get_resolver().url_patterns  # noqa: B018 - imported for its side effect
    gc.freeze()


def worker_exit(server, worker) -> None:
    """A worker leaving (recycled, or at shutdown) closes its database connections and logs,
    then ends without the interpreter's teardown of every object (seconds for a large heap,
    while the master waits to start its replacement). gunicorn also calls this hook in the
    master for a worker that vanished: only the worker itself ends here, with the exit code it
    was leaving with (the master tells a worker that failed to boot by it)."""
    leaving = sys.exc_info()[1]  # the SystemExit the worker is leaving with, and its code
    if os.getpid() != worker.pid or not isinstance(leaving, SystemExit):
        return
    code = 0 if leaving.code is None else leaving.code
    code = code if isinstance(code, int) else 1
    from django.db import connections

    connections.close_all()
    logging.shutdown()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)
