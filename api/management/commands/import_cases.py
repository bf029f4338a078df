from pathlib import Path

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError
from tqdm import tqdm

from api.imports import ImportFileError, cases_import


class Command(BaseCommand):
    help = (
        "Import patients, procedures, treated levels, questionnaire answers and complications "
        "from CSV or Excel files in the exports' format. The whole set is imported or none of "
        "it; importing the same files again changes nothing."
    )

    def add_arguments(self, parser):
        parser.add_argument("files", nargs="+", type=Path, help=".csv files or .xlsx workbooks")
        parser.add_argument(
            "--dry-run", action="store_true", help="Check and report; keep nothing."
        )
        parser.add_argument("--site", default="", help="Site code: every row must be of it.")
        parser.add_argument(
            "--user", default="", help="Username recorded as entering imported answers."
        )
        parser.add_argument("--no-progress", action="store_true")
        parser.add_argument(
            "--list-changes",
            action="store_true",
            help="List every changed row (by default the first 20 per table).",
        )

    def handle(self, *args, files, dry_run, site, user, no_progress, list_changes, **options):
        staff = None
        if user:
            staff = get_user_model().objects.filter(username=user).first()
            if staff is None:
                raise CommandError(f"No user {user!r}.")
        contents = []
        for path in files:
            try:
                contents.append((path.name, path.read_bytes()))
            except OSError as error:
                raise CommandError(f"{path}: {error.strerror}") from error
        bar = tqdm(desc="rows", unit="row", disable=no_progress, file=self.stderr._out)
        try:
            result = cases_import(
                files=contents,
                site_code=site,
                dry_run=dry_run,
                progress=bar.update,
                on_start=lambda total: setattr(bar, "total", total),
                # The command line is the registry manager's door: every site (or --site);
                # --user only names who entered the answers.
                entered_by=staff,
            )
        except ImportFileError as error:
            raise CommandError(str(error)) from error
        finally:
            bar.close()
        self._report(result, list_changes=list_changes)
        if not result.ok:
            raise CommandError(
                f"{len(result.problems)} problems: nothing was imported. Fix the rows above "
                "and run the import again."
            )

    def _report(self, result, *, list_changes: bool) -> None:
        verb = ("would create", "would change") if result.dry_run else ("created", "changed")
        if not result.ok and not result.dry_run:
            verb = ("would create", "would change")
        for name, tally in result.tables.items():
            self.stdout.write(
                f"{name}: {verb[0]} {tally.created}, {verb[1]} {tally.changed}, "
                f"unchanged {tally.unchanged}"
            )
            shown = tally.changes if list_changes else tally.changes[:20]
            for change in shown:
                self.stdout.write(f"  changed {change}")
            if len(shown) < len(tally.changes):
                self.stdout.write(f"  … and {len(tally.changes) - len(shown)} more changed rows")
        for sheet, columns in result.ignored_columns.items():
            self.stdout.write(f"{sheet}: ignored export columns {', '.join(columns)}")
        for note in result.notes:
            self.stdout.write(f"NOTE {note}")
        for group in result.grouped_problems():  # identical problems of many rows said once
            self.stdout.write(f"ERROR {group}")
        if result.ok:
            self.stdout.write("Dry run: nothing was saved." if result.dry_run else "Saved.")
