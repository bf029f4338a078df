"""The Celery application. Workers and beat are started with ``-A registry``."""

import os

from celery import Celery
from celery.signals import after_setup_logger, after_setup_task_logger

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "registry.project.settings")

app = Celery("registry")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()


@after_setup_logger.connect
@after_setup_task_logger.connect
def _redact_tokens_in_worker_logs(logger, **kwargs) -> None:
    """Celery installs its own handlers on the worker's loggers: give each of them the
    filter every Django handler has, so no questionnaire token is written in clear."""
    from registry.project.redaction import RedactTokensFilter

    for handler in logger.handlers:
        if not any(isinstance(f, RedactTokensFilter) for f in handler.filters):
            handler.addFilter(RedactTokensFilter())
