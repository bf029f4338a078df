"""Unlock records in bulk, with a reason: ``manage.py unlock_records --registry-id AAR-000123
--reason "..." --user dm.jensen``."""

from outcomes.management.commands.lock_records import Command as LockCommand


class Command(LockCommand):
    help = (
        "Lift every lock of the patients named by registry id and/or site, with a reason kept "
        "in the audit trail."
    )
    unlock = True
