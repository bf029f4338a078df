from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from outcomes.reports.annual import annual_report, annual_report_docx
from registry.models import Site
from registry.project.db_router import reading_from_replica


class Command(BaseCommand):
    help = (
        "Write the annual registry report of a year as a Word document: inclusion and "
        "completeness by site and year, characteristics and outcomes by cohort, site "
        "benchmarking with funnel plots, complications, methods and the models. With --site, "
        "that site's edition (the site named, the others as letters, the site against the rest)."
    )

    def add_arguments(self, parser):
        parser.add_argument("--year", type=int, required=True)
        parser.add_argument("--site", help="site code: that site's edition")
        parser.add_argument(
            "--output", help="file to write (default: annual-report-YEAR[-SITE].docx)"
        )

    def handle(self, *args, year: int, site: str | None, output: str | None, **options):
        if not 2000 <= year <= 2100:
            raise CommandError(f"--year {year} is not a registry year (2000–2100).")
        chosen = None
        if site:
            chosen = Site.objects.filter(code=site).first()
            if chosen is None:
                codes = ", ".join(Site.objects.order_by("code").values_list("code", flat=True))
                raise CommandError(f"No site {site!r}. Sites: {codes or 'none'}.")
        with reading_from_replica():
            report = annual_report(year=year, site=chosen)
        path = Path(output or f"annual-report-{year}{f'-{chosen.code}' if chosen else ''}.docx")
        path.write_bytes(annual_report_docx(report))
        self.stdout.write(
            f"{report['title']} ({report['edition']}): {report['patients']} patients, "
            f"written to {path}"
        )
