from django.core.management.base import BaseCommand

from outcomes.chasing import followups_ensure


class Command(BaseCommand):
    help = "Create the follow-up schedules of every procedure that lacks one (run by make run)."

    def handle(self, *args, **options):
        created = followups_ensure()
        self.stdout.write(f"Follow-up schedules: {created} follow-ups created.")
