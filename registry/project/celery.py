"""The Celery application. Workers and beat are started with ``-A registry``."""

import logging.config
import os

from celery import Celery, signals
from celery.signals import after_setup_logger, after_setup_task_logger

from registry.project.logs import request_id_var

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "registry.project.settings")

app = Celery("registry")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()


@signals.setup_logging.connect
def _use_django_logging(**kwargs) -> None:
    """Workers and beat log through the settings' LOGGING (text or JSON), not Celery's own."""
    from django.conf import settings

    logging.config.dictConfig(settings.LOGGING)


@signals.before_task_publish.connect
def _pass_request_id(headers: dict, **kwargs) -> None:
    """A task queued while a request runs carries that request's id."""
    request_id = request_id_var.get()
    if request_id is not None:
        headers.setdefault("request_id", request_id)


_task_tokens: dict[str, object] = {}


@signals.task_prerun.connect
def _adopt_request_id(task_id: str, task, **kwargs) -> None:
    """The task's log lines carry the id of the request that queued it: a message header from
    a worker's queue, ``headers`` of an eager ``apply``, or (eager in a request) the current."""
    request_id = (
        getattr(task.request, "request_id", None)
        or (task.request.headers or {}).get("request_id")
        or request_id_var.get()
    )
    _task_tokens[task_id] = request_id_var.set(request_id)


@signals.task_postrun.connect
def _drop_request_id(task_id: str, **kwargs) -> None:
    token = _task_tokens.pop(task_id, None)
    if token is not None:
        request_id_var.reset(token)


@signals.beat_init.connect
def _sweep_when_beat_starts(sender, **kwargs) -> None:
    """Beat first runs an interval schedule one interval after it starts; the chasing sweep
    runs at once instead, so a new installation (or beat back from an outage) is ready without
    waiting up to CHASE_INTERVAL_SECONDS. The sweep is idempotent: an extra run sends nothing
    twice."""
    entry = sender.app.conf.beat_schedule.get("chase-followups")
    if entry is not None:
        sender.app.send_task(entry["task"])


@after_setup_logger.connect
@after_setup_task_logger.connect
def _redact_tokens_in_worker_logs(logger, **kwargs) -> None:
    """Celery installs its own handlers on the worker's loggers: give each of them the
    filter every Django handler has, so no questionnaire token is written in clear."""
    from registry.project.redaction import RedactTokensFilter

    for handler in logger.handlers:
        if not any(isinstance(f, RedactTokensFilter) for f in handler.filters):
            handler.addFilter(RedactTokensFilter())
