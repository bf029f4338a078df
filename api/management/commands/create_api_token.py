"""Create an API token for a user and print it once (only its digest is stored)."""

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError

from api.services import api_token_create


class Command(BaseCommand):
    help = "Create an API token for USERNAME and print it (shown once; only a digest is kept)."

    def add_arguments(self, parser):
        parser.add_argument("username")

    def handle(self, *args, username: str, **options):
        try:
            user = get_user_model().objects.get(username=username)
        except get_user_model().DoesNotExist:
            raise CommandError(f"No user called {username!r}.") from None
        if not user.is_active:
            raise CommandError(f"{username!r} is not active: activate the user first.")
        instance, token = api_token_create(user=user)
        self.stderr.write(
            f"API token for {username} (expires {instance.expiry:%Y-%m-%d}); it is not shown "
            "again. Use it as: Authorization: Token <token>"
        )
        self.stdout.write(token)
