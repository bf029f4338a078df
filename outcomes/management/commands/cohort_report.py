import datetime
import json

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError

from outcomes.reports.dataset import ReportFilter
from outcomes.reports.formats import report_csv, report_markdown
from outcomes.reports.tables import cohort_report


def _date(value: str) -> datetime.date:
    try:
        return datetime.date.fromisoformat(value)
    except ValueError as exc:
        raise CommandError(f"Not a date (YYYY-MM-DD): {value}") from exc


class Command(BaseCommand):
    help = (
        "Print the cohort report (pathologic vs osteoporotic) as Markdown, CSV or JSON: the "
        "same numbers as the admin page and the API."
    )

    def add_arguments(self, parser):
        parser.add_argument("--format", choices=["md", "csv", "json"], default="md")
        parser.add_argument("--site", action="append", default=[], help="site code; repeat")
        parser.add_argument("--from", dest="date_from", help="index procedures from (date)")
        parser.add_argument("--to", dest="date_to", help="index procedures to (date)")
        parser.add_argument("--as-of", dest="as_of", help="report date (default today)")
        parser.add_argument(
            "--user", help="report with this user's site scope (default: every site)"
        )

    def handle(self, *args, **options):
        filters = ReportFilter.of(
            sites=options["site"],
            date_from=_date(options["date_from"]) if options["date_from"] else None,
            date_to=_date(options["date_to"]) if options["date_to"] else None,
            as_of=_date(options["as_of"]) if options["as_of"] else None,
        )
        user = None  # the command line runs on the server: every site
        if options["user"]:
            try:
                user = get_user_model().objects.get(username=options["user"])
            except get_user_model().DoesNotExist as exc:
                raise CommandError(f"No user {options['user']!r}.") from exc
        report = cohort_report(user=user, filters=filters)
        if options["format"] == "json":
            self.stdout.write(json.dumps(report, indent=2, ensure_ascii=False))
        elif options["format"] == "csv":
            self.stdout.write(report_csv(report), ending="")
        else:
            self.stdout.write(report_markdown(report), ending="")
