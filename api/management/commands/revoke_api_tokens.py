"""Revoke every API token of a user (for a single token, use the admin's token list)."""

from api.services import api_tokens_revoke
from registry.management.user_command import UserCommand


class Command(UserCommand):
    help = "Revoke (delete) every API token of USERNAME."

    def handle_user(self, user) -> None:
        count = api_tokens_revoke(user=user)
        self.stdout.write(f"Revoked {count} API token(s) of {user.username}.")
