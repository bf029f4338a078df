import datetime

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError
from django.db import transaction

from api.freezes import FreezeError, data_freeze_create, freeze_records_lock
from outcomes.records.locking import LOCK_PERMISSION


class Command(BaseCommand):
    help = (
        "Freeze every export, the dictionary, the codebook and the cohort report as of a date: "
        "a named, read-only snapshot with a manifest of row counts and SHA-256 checksums. "
        "With --lock, also lock every record the freeze includes, in the same transaction."
    )

    def add_arguments(self, parser):
        parser.add_argument("name", help="a slug, e.g. paper-2026-vertebroplasty")
        parser.add_argument("--as-of", dest="as_of", required=True, help="cut-off, YYYY-MM-DD")
        parser.add_argument(
            "--by", required=True, help="username of the registry manager making it (audited)"
        )
        parser.add_argument(
            "--lock",
            action="store_true",
            help="lock the record of every patient with a row in the freeze's exports (records "
            "with queries not closed stay unlocked and are listed)",
        )
        parser.add_argument(
            "--lock-reason",
            dest="lock_reason",
            default="",
            help='the locks\' reason in the audit trail (default "data freeze NAME")',
        )

    def handle(self, *args, **options):
        try:
            as_of = datetime.date.fromisoformat(options["as_of"])
        except ValueError as exc:
            raise CommandError(f"--as-of: {options['as_of']!r} is not YYYY-MM-DD") from exc
        user = get_user_model().objects.filter(username=options["by"], is_active=True).first()
        if user is None:
            raise CommandError(f"No active user {options['by']!r}.")
        lock = options["lock"]
        reason = options["lock_reason"].strip() or f"data freeze {options['name']}"
        if options["lock_reason"] and not lock:
            raise CommandError("--lock-reason goes with --lock.")
        if lock and not user.has_perm(LOCK_PERMISSION):
            raise CommandError(f"{user} may not lock records ({LOCK_PERMISSION}).")
        # The freeze and its locks commit together: a freeze that fails locks nothing.
        with transaction.atomic():
            try:
                freeze = data_freeze_create(name=options["name"], as_of=as_of, user=user)
            except FreezeError as exc:
                raise CommandError(str(exc)) from exc
            locked = freeze_records_lock(freeze, user=user, reason=reason) if lock else None
        for entry in freeze.manifest["files"]:
            rows = "" if entry["rows"] is None else f"{entry['rows']} rows  "
            self.stdout.write(f"{entry['sha256']}  {rows}{entry['name']}")
        self.stderr.write(f"Froze {freeze.name} as of {freeze.as_of}.")
        if locked is not None:
            for registry_id, why in locked.refused:
                self.stderr.write(f"{registry_id}: not locked: {why}")
            self.stderr.write(f"{len(locked.done)} record(s) locked, {len(locked.refused)} not.")
