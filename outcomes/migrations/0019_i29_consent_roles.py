"""Who may manage consent documents: site leads and registry managers add new versions; every
staff role sees the documents and the consents of its sites (auditors do not: consents carry
names)."""

from django.contrib.auth.management import create_permissions
from django.db import migrations

ROLES = {
    "Site staff": {"consentdocument": ["view"], "patientconsent": ["view"]},
    "Site lead": {"consentdocument": ["add", "view"], "patientconsent": ["view"]},
    "Registry manager": {"consentdocument": ["add", "view"], "patientconsent": ["view"]},
}


def grant(apps, schema_editor):
    for app_config in apps.get_app_configs():
        app_config.models_module = True
        create_permissions(app_config, verbosity=0, apps=apps)
        app_config.models_module = None
    Group = apps.get_model("auth", "Group")
    Permission = apps.get_model("auth", "Permission")
    for name, models in ROLES.items():
        codenames = [f"{a}_{m}" for m, actions in models.items() for a in actions]
        perms = Permission.objects.filter(
            content_type__app_label="outcomes", codename__in=codenames
        )
        assert perms.count() == len(codenames)
        Group.objects.get_or_create(name=name)[0].permissions.add(*perms)


class Migration(migrations.Migration):
    dependencies = [("outcomes", "0018_i29_consent"), ("registry", "0002_role_groups")]
    operations = [migrations.RunPython(grant, migrations.RunPython.noop)]
