import datetime

from django.core.management.base import BaseCommand, CommandError
from django.db import transaction
from django.utils import timezone

from outcomes.followups.sending import contact_attempt_send
from outcomes.followups.sweep import followups_sweep
from outcomes.models import ContactAttempt


class Command(BaseCommand):
    help = (
        "Run one follow-up chasing sweep now and send what falls due. With --now later than "
        "the present it only prints what would happen unless --commit is given: a sweep ahead "
        "of time marks open follow-ups missed, sends reminders early and invalidates links."
    )

    def add_arguments(self, parser):
        parser.add_argument(
            "--dry-run", action="store_true", help="List what the sweep would do; change nothing."
        )
        parser.add_argument(
            "--now", help="Run as of this ISO date-time (e.g. 2026-06-01T09:00+02:00)."
        )
        parser.add_argument(
            "--commit",
            action="store_true",
            help="With --now in the future: really change the database and send (tests, demos).",
        )

    def handle(self, *args, dry_run: bool, now: str | None, commit: bool = False, **options):
        moment = timezone.now()
        if now:
            try:
                moment = datetime.datetime.fromisoformat(now)
            except ValueError as exc:
                raise CommandError(f"--now must be an ISO date-time: {exc}") from None
            if timezone.is_naive(moment):
                moment = timezone.make_aware(moment)
            if moment > timezone.now() and not commit and not dry_run:
                self.stderr.write(
                    f"--now {moment.isoformat()} is in the future: printing what would happen, "
                    "changing nothing (give --commit to run it for real)."
                )
                dry_run = True
        if dry_run:
            with transaction.atomic():
                report = followups_sweep(now=moment)
                transaction.set_rollback(True)
        else:
            report = followups_sweep(now=moment)
        for followup_id, timepoint, step in report.actions:
            self.stdout.write(f"follow-up {followup_id} ({timepoint}): {step}")
        statuses: dict[str, int] = {}
        if not dry_run:
            # Every attempt due and not finished (including those a lost broker message left
            # behind), each claimed before it is sent: a worker busy with one is not doubled.
            for attempt_id in report.attempt_ids:
                status = contact_attempt_send(attempt_id=attempt_id, now=moment)
                statuses[status] = statuses.get(status, 0) + 1
                if status not in ("sent", "skipped"):
                    attempt = ContactAttempt.objects.get(pk=attempt_id)
                    self.stderr.write(f"message {attempt_id} {status}: {attempt.error}")
        prefix = "Would do" if dry_run else "Done"
        self.stdout.write(
            f"{prefix}: {len(report.actions)} steps in {report.batches} batches; "
            f"{statuses.get('sent', 0)} messages sent, "
            f"{statuses.get('pending', 0) + statuses.get('failed', 0)} failed, "
            f"{statuses.get('unknown', 0) + report.unknown} unknown."
        )
