"""Celery tasks of the API: thin, by id, one service each."""

from __future__ import annotations

import logging

from celery import shared_task

from api.bulk import bulk_export_run, bulk_exports_sweep

logger = logging.getLogger(__name__)


def enqueue_bulk_export(export_id) -> None:
    """Queue one export; a broker that is down only delays it to the next sweep."""
    try:
        run_bulk_export.apply_async((str(export_id),), retry=False)
    except Exception:
        logger.warning("bulk export %s not queued; the sweep will run it", export_id)


@shared_task(name="api.run_bulk_export")
def run_bulk_export(export_id: str) -> str:
    return bulk_export_run(export_id=export_id)


@shared_task(name="api.bulk_exports_sweep")
def sweep_bulk_exports() -> int:
    return bulk_exports_sweep()
