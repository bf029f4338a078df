"""Unlock records in bulk, with a reason: ``manage.py unlock_records --registry-id AAR-000123
--reason "..." --user dm.jensen`` (or ``--site``, ``--freeze``)."""

from api.management.commands.lock_records import Command as LockCommand


class Command(LockCommand):
    help = (
        "Lift every lock of the patients named by registry id, site and/or data freeze, with "
        "a reason kept in the audit trail."
    )
    unlock = True
