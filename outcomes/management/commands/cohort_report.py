import json

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError
from django.http import QueryDict

from outcomes.reports.dataset import ReportFilterError, parse_report_filter
from outcomes.reports.formats import (
    download_name,
    report_csv,
    report_docx,
    report_markdown,
    report_tidy_csv,
)
from outcomes.reports.tables import cohort_report
from registry.project.db_router import reading_from_replica

TEXT_FORMATS = {
    "md": report_markdown,
    "csv": report_csv,
    "tidy": report_tidy_csv,
    "json": lambda report: json.dumps(report, indent=2, ensure_ascii=False) + "\n",
}


class Command(BaseCommand):
    help = (
        "Print the cohort report (pathologic vs osteoporotic) as Markdown, formatted CSV, tidy "
        "CSV or JSON, or write it as a Word document (--format docx): the same numbers as the "
        "admin page and the API."
    )

    def add_arguments(self, parser):
        parser.add_argument("--format", choices=[*TEXT_FORMATS, "docx"], default="md")
        parser.add_argument(
            "--paper", choices=["a4", "letter"], default="a4", help="page size of --format docx"
        )
        parser.add_argument("--site", action="append", default=[], help="site code; repeat")
        parser.add_argument("--from", dest="date_from", help="index procedures from (date)")
        parser.add_argument("--to", dest="date_to", help="index procedures to (date)")
        parser.add_argument("--as-of", dest="as_of", help="data cut-off (default today)")
        parser.add_argument(
            "--user", help="report with this user's site scope (default: every site)"
        )
        parser.add_argument(
            "--output",
            help="file to write (default: standard output; for docx, the download name in the "
            "current directory)",
        )

    def handle(self, *args, **options):
        user = None  # the command line runs on the server: every site
        if options["user"]:
            try:
                user = get_user_model().objects.get(username=options["user"])
            except get_user_model().DoesNotExist as exc:
                raise CommandError(f"No user {options['user']!r}.") from exc
        query = QueryDict(mutable=True)
        query.setlist("site", options["site"])
        for key in ("date_from", "date_to", "as_of"):
            if options[key]:
                query[key] = options[key]
        try:
            filters = parse_report_filter(query, user=user)
        except ReportFilterError as exc:
            raise CommandError(f"Bad report filter: {exc}") from exc
        with reading_from_replica():  # as the report page does: the replica, when there is one
            report = cohort_report(user=user, filters=filters)
        fmt, output = options["format"], options["output"]
        if fmt == "docx":
            path = output or download_name(report, "docx")
            with open(path, "wb") as out:
                out.write(report_docx(report, paper=options["paper"]))
            self.stderr.write(f"Wrote {path}")
            return
        text = TEXT_FORMATS[fmt](report)
        if output:
            with open(output, "w", encoding="utf-8") as out:
                out.write(text)
            self.stderr.write(f"Wrote {output}")
        else:
            self.stdout.write(text, ending="")
