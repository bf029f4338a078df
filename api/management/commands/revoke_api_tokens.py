"""Revoke every API token of a user (for a single token, use the admin's token list)."""

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError

from api.services import api_tokens_revoke


class Command(BaseCommand):
    help = "Revoke (delete) every API token of USERNAME."

    def add_arguments(self, parser):
        parser.add_argument("username")

    def handle(self, *args, username: str, **options):
        try:
            user = get_user_model().objects.get(username=username)
        except get_user_model().DoesNotExist:
            raise CommandError(f"No user called {username!r}.") from None
        count = api_tokens_revoke(user=user)
        self.stdout.write(f"Revoked {count} API token(s) of {username}.")
