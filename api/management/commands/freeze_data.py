import datetime

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError

from api.freezes import FreezeError, data_freeze_create


class Command(BaseCommand):
    help = (
        "Freeze every export, the dictionary, the codebook and the cohort report as of a date: "
        "a named, read-only snapshot with a manifest of row counts and SHA-256 checksums."
    )

    def add_arguments(self, parser):
        parser.add_argument("name", help="a slug, e.g. paper-2026-vertebroplasty")
        parser.add_argument("--as-of", dest="as_of", required=True, help="cut-off, YYYY-MM-DD")
        parser.add_argument(
            "--by", required=True, help="username of the registry manager making it (audited)"
        )

    def handle(self, *args, **options):
        try:
            as_of = datetime.date.fromisoformat(options["as_of"])
        except ValueError as exc:
            raise CommandError(f"--as-of: {options['as_of']!r} is not YYYY-MM-DD") from exc
        user = get_user_model().objects.filter(username=options["by"], is_active=True).first()
        if user is None:
            raise CommandError(f"No active user {options['by']!r}.")
        try:
            freeze = data_freeze_create(name=options["name"], as_of=as_of, user=user)
        except FreezeError as exc:
            raise CommandError(str(exc)) from exc
        for entry in freeze.manifest["files"]:
            rows = "" if entry["rows"] is None else f"{entry['rows']} rows  "
            self.stdout.write(f"{entry['sha256']}  {rows}{entry['name']}")
        self.stderr.write(f"Froze {freeze.name} as of {freeze.as_of}.")
