from django.core.management import call_command, get_commands
from django.core.management.base import BaseCommand
from tqdm import tqdm

from registry.demo import DEMO_PASSWORD, DEMO_USERS, create_demo_cohort


class Command(BaseCommand):
    help = "Create the synthetic demo cohort (sites, users, patients). Safe to run again."

    def add_arguments(self, parser):
        parser.add_argument("--patients", type=int, default=300)
        parser.add_argument("--no-progress", action="store_true")
        parser.add_argument(
            "--cohort-only",
            action="store_true",
            help="Only sites, users and patients: no follow-ups, answers or chasing history.",
        )

    def handle(self, *args, patients: int, no_progress: bool, cohort_only: bool, **options):
        with tqdm(
            total=patients,
            desc="demo patients",
            unit="patient",
            disable=no_progress,
            file=self.stderr._out,
        ) as bar:
            created = create_demo_cohort(patients=patients, progress=bar.update)
        self.stdout.write(
            f"Demo cohort: {created} new patients ({patients - created} already there). "
            f"Users: {', '.join(u[0] for u in DEMO_USERS)}; password {DEMO_PASSWORD}"
        )
        # The outcomes app (when installed) adds follow-ups, answers and chasing history, so
        # the report, the dashboard and the worklist have data after this one command. Called
        # by name: the registry app imports nothing from outcomes.
        if not cohort_only:
            for command in DEMO_EXTRA_COMMANDS:
                if command in get_commands():
                    call_command(command, stdout=self.stdout, stderr=self.stderr)


DEMO_EXTRA_COMMANDS = ("seed_demo_outcomes",)
