"""Who may lock and sign: registry managers (data managers) lock and unlock records; site leads
(the site investigators) sign them. Every role sees locks and signatures of its sites."""

from django.contrib.auth.management import create_permissions
from django.db import migrations

ROLES = {
    "Site staff": {"recordlock": ["view"], "signature": ["view"]},
    "Site lead": {"recordlock": ["view"], "signature": ["view", "sign"]},
    "Auditor": {"recordlock": ["view"], "signature": ["view"]},
    "Registry manager": {"recordlock": ["view", "lock"], "signature": ["view"]},
}
CODENAMES = {"lock_recordlock": "lock_record", "sign_signature": "sign_record"}


def codenames(models: dict) -> list[str]:
    names = [f"{action}_{model}" for model, actions in models.items() for action in actions]
    return [CODENAMES.get(name, name) for name in names]


def grant(apps, schema_editor):
    for app_config in apps.get_app_configs():
        app_config.models_module = True
        create_permissions(app_config, verbosity=0, apps=apps)
        app_config.models_module = None
    Group = apps.get_model("auth", "Group")
    Permission = apps.get_model("auth", "Permission")
    for name, models in ROLES.items():
        group, _created = Group.objects.get_or_create(name=name)
        wanted = codenames(models)
        perms = Permission.objects.filter(content_type__app_label="registry", codename__in=wanted)
        assert perms.count() == len(wanted), f"missing permissions for {name}"
        group.permissions.add(*perms)


class Migration(migrations.Migration):
    dependencies = [("registry", "0018_i29_record_locks_and_signatures")]

    operations = [migrations.RunPython(grant, migrations.RunPython.noop)]
