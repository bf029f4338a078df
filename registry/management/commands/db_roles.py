"""Set up the deployment's two database roles (docs/operations.md, *Database roles*)."""

from __future__ import annotations

import os

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from registry.roles import create_roles, grant_app_role


class Command(BaseCommand):
    help = (
        "create: as a superuser, once — create the owner (runs migrate) and the application's "
        "role (runs web, worker, beat), passwords from DB_OWNER_PASSWORD and DB_APP_PASSWORD. "
        "grant: as the owner, after migrate — give the application's role exactly its "
        "privileges (migrate does this itself when DATABASE_APP_ROLE is set)."
    )

    def add_arguments(self, parser):
        parser.add_argument("action", choices=["create", "grant"])
        parser.add_argument("--owner", default="registry_owner")
        parser.add_argument("--app", default=settings.DATABASE_APP_ROLE or "registry")

    def handle(self, *args, action: str, owner: str, app: str, **options) -> None:
        if owner == app:
            raise CommandError("The owner and the application's role must be two roles.")
        if action == "create":
            create_roles(
                owner=owner,
                app=app,
                owner_password=os.getenv("DB_OWNER_PASSWORD") or None,
                app_password=os.getenv("DB_APP_PASSWORD") or None,
            )
            self.stdout.write(
                f"Roles {owner} (owner) and {app} (application) are ready. Next, as {owner}: "
                f"DATABASE_APP_ROLE={app} manage.py migrate"
            )
            return
        try:
            kinds = grant_app_role(app)
        except ValueError as error:
            raise CommandError(str(error)) from error
        self.stdout.write(
            f"{app}: read and write on {len(kinds['working'])} tables, insert-only on "
            f"{len(kinds['audit'])} audit tables ({', '.join(kinds['audit'])}), no delete on "
            f"{', '.join(kinds['no-delete'])}, read-only on "
            f"{', '.join(kinds['read-only'])}."
        )
