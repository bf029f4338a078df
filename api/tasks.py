"""Celery tasks of the API: thin, by id, one service each."""

from __future__ import annotations

import logging

from celery import shared_task

from api.bulk import bulk_export_run, bulk_exports_sweep

logger = logging.getLogger(__name__)


@shared_task(name="api.run_bulk_export")
def run_bulk_export(export_id: str) -> str:
    return bulk_export_run(export_id=export_id)


@shared_task(name="api.bulk_exports_sweep")
def sweep_bulk_exports() -> int:
    return bulk_exports_sweep()
