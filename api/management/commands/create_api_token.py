"""Create an API token for a user and print it once (only its digest is stored)."""

from django.core.management.base import CommandError

from api.services import api_token_create
from registry.management.user_command import UserCommand


class Command(UserCommand):
    help = "Create an API token for USERNAME and print it (shown once; only a digest is kept)."

    def handle_user(self, user) -> None:
        if not user.is_active:
            raise CommandError(f"{user.username!r} is not active: activate the user first.")
        instance, token = api_token_create(user=user)
        self.stderr.write(
            f"API token for {user.username} (expires {instance.expiry:%Y-%m-%d}); it is not "
            "shown again. Use it as: Authorization: Token <token>"
        )
        self.stdout.write(token)
