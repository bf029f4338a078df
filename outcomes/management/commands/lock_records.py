"""Lock records in bulk: ``manage.py lock_records --site AAR --reason "..." --user dm.jensen``."""

from __future__ import annotations

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError

from outcomes.records.locking import LOCK_PERMISSION, records_lock, records_unlock
from registry.models import Patient, Site


class Command(BaseCommand):
    help = (
        "Lock the records of the patients named by registry id and/or site against every "
        "change (the database refuses them) until they are unlocked with a reason. Records "
        "with queries that are not closed are not locked and are listed."
    )
    unlock = False

    def add_arguments(self, parser):
        parser.add_argument(
            "--registry-id",
            action="append",
            default=[],
            dest="registry_ids",
            help="A patient's registry id (repeatable).",
        )
        parser.add_argument(
            "--site",
            action="append",
            default=[],
            dest="sites",
            help="A site code: every patient of the site (repeatable).",
        )
        parser.add_argument("--reason", required=True, help="Why: kept in the audit trail.")
        parser.add_argument("--user", required=True, help="Username of the data manager acting.")

    def handle(self, *args, registry_ids, sites, reason, user, **options):
        if not reason.strip():
            raise CommandError("--reason must say why.")
        if not registry_ids and not sites:
            raise CommandError("Name the records: --registry-id and/or --site.")
        acting = get_user_model().objects.filter(username=user, is_active=True).first()
        if acting is None:
            raise CommandError(f"No active user {user!r}.")
        if not acting.has_perm(LOCK_PERMISSION):
            raise CommandError(f"{user} may not lock or unlock records ({LOCK_PERMISSION}).")
        unknown_sites = sorted(
            set(sites) - set(Site.objects.filter(code__in=sites).values_list("code", flat=True))
        )
        if unknown_sites:
            raise CommandError(f"No such site: {', '.join(unknown_sites)}.")
        found = set(
            Patient.objects.filter(registry_id__in=registry_ids).values_list(
                "registry_id", flat=True
            )
        )
        missing = sorted(set(registry_ids) - found)
        if missing:
            raise CommandError(f"No such registry id: {', '.join(missing)}.")
        patients = Patient.objects.filter(registry_id__in=registry_ids) | Patient.objects.filter(
            site__code__in=sites
        )
        patients = patients.distinct().order_by("registry_id")
        act = records_unlock if self.unlock else records_lock
        result = act(patients=patients.iterator(), user=acting, reason=reason)
        for registry_id, why in result.refused:
            self.stderr.write(f"{registry_id}: not {self.verb}: {why}")
        self.stdout.write(f"{len(result.done)} record(s) {self.verb}, {len(result.refused)} not.")

    @property
    def verb(self) -> str:
        return "unlocked" if self.unlock else "locked"
