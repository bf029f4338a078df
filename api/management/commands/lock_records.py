"""Lock records in bulk: ``manage.py lock_records --site AAR --reason "..." --user dm.jensen``,
or every record a data freeze includes: ``--freeze paper-2026``."""

from __future__ import annotations

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError

from api.freezes import FreezeError, freeze_registry_ids
from api.models import DataFreeze
from outcomes.records.locking import LOCK_PERMISSION, records_lock, records_unlock
from registry.models import Patient, Site


class Command(BaseCommand):
    help = (
        "Lock the records of the patients named by registry id, site and/or data freeze "
        "against every change (the database refuses them) until they are unlocked with a "
        "reason. Records with queries that are not closed are not locked and are listed."
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
        parser.add_argument(
            "--freeze",
            action="append",
            default=[],
            dest="freezes",
            help="A data freeze's name: every patient with a row in its export files (repeatable).",
        )
        parser.add_argument("--reason", required=True, help="Why: kept in the audit trail.")
        parser.add_argument("--user", required=True, help="Username of the data manager acting.")

    def handle(self, *args, registry_ids, sites, freezes, reason, user, **options):
        if not reason.strip():
            raise CommandError("--reason must say why.")
        if not registry_ids and not sites and not freezes:
            raise CommandError("Name the records: --registry-id, --site and/or --freeze.")
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
        frozen_ids: set[str] = set()
        for name in freezes:
            freeze = DataFreeze.objects.filter(name=name).first()
            if freeze is None:
                known = ", ".join(DataFreeze.objects.values_list("name", flat=True)) or "none"
                raise CommandError(f"No data freeze named {name!r} (freezes: {known}).")
            try:
                frozen_ids.update(freeze_registry_ids(freeze))
            except FreezeError as error:
                raise CommandError(str(error)) from error
        patients = (
            Patient.objects.filter(registry_id__in=registry_ids)
            | Patient.objects.filter(site__code__in=sites)
            | Patient.objects.filter(registry_id__in=frozen_ids)
        )
        patients = patients.distinct().order_by("registry_id")
        act = records_unlock if self.unlock else records_lock
        result = act(patients=patients.iterator(), user=acting, reason=reason)
        gone = sorted(frozen_ids - set(result.done) - {rid for rid, _why in result.refused})
        result.refused.extend((registry_id, "no longer in the registry") for registry_id in gone)
        for registry_id, why in result.refused:
            self.stderr.write(f"{registry_id}: not {self.verb}: {why}")
        self.stdout.write(f"{len(result.done)} record(s) {self.verb}, {len(result.refused)} not.")

    @property
    def verb(self) -> str:
        return "unlocked" if self.unlock else "locked"
