"""The base of management commands that act on one user, named on the command line."""

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError


class UserCommand(BaseCommand):
    """``manage.py <command> USERNAME``: an unknown username is a clear error."""

    def add_arguments(self, parser):
        parser.add_argument("username")

    def handle(self, *args, username: str, **options):
        try:
            user = get_user_model().objects.get(username=username)
        except get_user_model().DoesNotExist:
            raise CommandError(f"No user called {username!r}.") from None
        self.handle_user(user)

    def handle_user(self, user) -> None:
        """What the command does with the user; each command defines it."""
        raise NotImplementedError(f"{type(self).__module__} defines no handle_user")
