from django.core.management.base import BaseCommand
from tqdm import tqdm

from registry.demo import DEMO_PASSWORD, DEMO_USERS, create_demo_cohort


class Command(BaseCommand):
    help = "Create the synthetic demo cohort (sites, users, patients). Safe to run again."

    def add_arguments(self, parser):
        parser.add_argument("--patients", type=int, default=300)
        parser.add_argument("--no-progress", action="store_true")

    def handle(self, *args, patients: int, no_progress: bool, **options):
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
