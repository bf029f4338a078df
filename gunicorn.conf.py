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
# Replace each worker after this many requests (with jitter), so no slow leak accumulates.
max_requests = int(os.getenv("WEB_MAX_REQUESTS", "2000"))
max_requests_jitter = max_requests // 10
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
