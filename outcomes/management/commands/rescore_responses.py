from django.core.management.base import BaseCommand

from outcomes.responses import responses_locked, responses_rescore


class Command(BaseCommand):
    help = (
        "Recompute the EQ-5D index and ODI of every stored response with the sites' current "
        "value sets, and report what changed."
    )

    def add_arguments(self, parser):
        parser.add_argument("--dry-run", action="store_true", help="Report only; write nothing.")

    def handle(self, *args, dry_run: bool, **options):
        changes = responses_rescore(dry_run=dry_run)
        for change in changes:
            self.stdout.write(
                f"response {change.response_id}: {change.field} {change.old} -> {change.new}"
            )
        responses = len({change.response_id for change in changes})
        verb = "would change" if dry_run else "changed"
        self.stdout.write(f"{responses} responses {verb} ({len(changes)} scores).")
        locked = responses_locked().count()
        if locked:
            self.stdout.write(f"{locked} responses of locked records were left as they are.")
