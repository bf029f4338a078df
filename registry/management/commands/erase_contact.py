"""Erase a patient's contact details on request (docs/security.md, *Retention and erasure*)."""

from __future__ import annotations

from django.core.management.base import BaseCommand, CommandError

from registry.erasure import ErasureError, contact_erase


class Command(BaseCommand):
    help = (
        "Delete the name, email address and phone number of the patient REGISTRY_ID (their "
        "history never kept them); the clinical record and its audit trail stay. The erasure "
        "is recorded in the audit trail with --reason and the operator."
    )

    def add_arguments(self, parser):
        parser.add_argument("registry_id")
        parser.add_argument("--reason", required=True, help="the request, its date, a case no.")
        parser.add_argument("--operator", help="who carries it out (default: the OS user)")

    def handle(self, *args, registry_id: str, reason: str, operator: str | None, **options):
        try:
            ended = contact_erase(registry_id=registry_id, reason=reason, operator=operator)
        except ErasureError as error:
            raise CommandError(str(error)) from error
        self.stdout.write(
            f"Contact details of {registry_id} erased; {ended} session(s) holding them ended. "
            "Backups taken before today still hold them until they expire."
        )
