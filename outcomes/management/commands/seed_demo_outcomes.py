from django.core.management.base import BaseCommand

from outcomes.demo import create_demo_chasing, create_demo_responses, seed_demo_data_errors
from outcomes.followups.sweep import followups_ensure
from outcomes.quality.services import quality_run


class Command(BaseCommand):
    help = (
        "Create the follow-up schedules of every procedure that lacks one, and the demo "
        "cohort's questionnaire answers for windows already closed, a few deliberate data "
        "errors for the data-quality page, and one run of its rules (run by make run)."
    )

    def handle(self, *args, **options):
        created = followups_ensure()
        self.stdout.write(f"Follow-up schedules: {created} follow-ups created.")
        answered = create_demo_responses()
        self.stdout.write(f"Demo questionnaire answers: {answered} responses created.")
        chased = create_demo_chasing()
        self.stdout.write(f"Demo chasing history: {chased} follow-ups on the phone worklist.")
        planted = seed_demo_data_errors()
        quality_run()
        self.stdout.write(
            f"Demo data errors: {planted} planted; data-quality rules run at every site."
        )
