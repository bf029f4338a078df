from django.core.management.base import BaseCommand

from outcomes.demo import create_demo_chasing, create_demo_responses
from outcomes.followups.sweep import followups_ensure


class Command(BaseCommand):
    help = (
        "Create the follow-up schedules of every procedure that lacks one, and the demo "
        "cohort's questionnaire answers for windows already closed (run by make run)."
    )

    def handle(self, *args, **options):
        created = followups_ensure()
        self.stdout.write(f"Follow-up schedules: {created} follow-ups created.")
        answered = create_demo_responses()
        self.stdout.write(f"Demo questionnaire answers: {answered} responses created.")
        chased = create_demo_chasing()
        self.stdout.write(f"Demo chasing history: {chased} follow-ups on the phone worklist.")
