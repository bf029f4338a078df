import datetime

from django.core.management.base import BaseCommand, CommandError
from django.db import transaction
from django.utils import timezone

from outcomes.followups.sending import SendFailed, contact_attempt_send
from outcomes.followups.sweep import followups_sweep


class Command(BaseCommand):
    help = "Run one follow-up chasing sweep now and send what falls due."

    def add_arguments(self, parser):
        parser.add_argument(
            "--dry-run", action="store_true", help="List what the sweep would do; change nothing."
        )
        parser.add_argument(
            "--now", help="Run as of this ISO date-time (e.g. 2026-06-01T09:00+02:00)."
        )

    def handle(self, *args, dry_run: bool, now: str | None, **options):
        moment = timezone.now()
        if now:
            try:
                moment = datetime.datetime.fromisoformat(now)
            except ValueError as exc:
                raise CommandError(f"--now must be an ISO date-time: {exc}") from None
            if timezone.is_naive(moment):
                moment = timezone.make_aware(moment)
        if dry_run:
            with transaction.atomic():
                report = followups_sweep(now=moment)
                transaction.set_rollback(True)
        else:
            report = followups_sweep(now=moment)
        for followup_id, timepoint, step in report.actions:
            self.stdout.write(f"follow-up {followup_id} ({timepoint}): {step}")
        sent = failed = 0
        if not dry_run:
            for attempt_id in report.attempt_ids:
                try:
                    status = contact_attempt_send(attempt_id=attempt_id, now=moment)
                except SendFailed as exc:
                    failed += 1
                    self.stderr.write(f"message {attempt_id} failed: {exc}")
                else:
                    sent += status == "sent"
        prefix = "Would do" if dry_run else "Done"
        self.stdout.write(
            f"{prefix}: {len(report.actions)} steps in {report.batches} batches; "
            f"{sent} messages sent, {failed} failed."
        )
