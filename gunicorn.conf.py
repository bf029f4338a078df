"""gunicorn settings for the registry: `gunicorn -c gunicorn.conf.py registry.project.wsgi`.

Every value comes from the environment (docs/configuration.md). Sync workers: the
requests are short and database-bound, and a CSV export streams from one worker without
holding others up.
"""

import multiprocessing
import os

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
