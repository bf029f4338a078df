"""Core clinical models and admin of the vertebral augmentation registry.

Imports point one way: ``registry`` never imports ``outcomes`` or ``api``.
"""

# Load the Celery app whenever Django starts, so @shared_task binds to it (and its broker).
from registry.project.celery import app as celery_app  # noqa: E402

__all__ = ["celery_app"]
