"""Give the role groups their permissions on questionnaire responses."""

from django.contrib.auth.management import create_permissions
from django.db import migrations

ROLES = {
    "Site staff": ["add", "change", "view"],
    "Site lead": ["add", "change", "delete", "view"],
    "Auditor": ["view"],
    "Registry manager": ["add", "change", "delete", "view"],
}


def grant(apps, schema_editor):
    for app_config in apps.get_app_configs():
        app_config.models_module = True
        create_permissions(app_config, verbosity=0, apps=apps)
        app_config.models_module = None
    Group = apps.get_model("auth", "Group")
    Permission = apps.get_model("auth", "Permission")
    for name, actions in ROLES.items():
        group = Group.objects.get(name=name)
        codenames = [f"{action}_questionnaireresponse" for action in actions]
        perms = Permission.objects.filter(
            content_type__app_label="outcomes", codename__in=codenames
        )
        assert perms.count() == len(codenames)
        group.permissions.add(*perms)


class Migration(migrations.Migration):
    dependencies = [("outcomes", "0001_initial"), ("registry", "0002_role_groups")]
    operations = [migrations.RunPython(grant, migrations.RunPython.noop)]
