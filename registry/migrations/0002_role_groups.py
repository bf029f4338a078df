"""Create the four role groups with their model permissions.

Site staff enter and correct records; a site lead may also delete them; an auditor only views
(and never contact details); a registry manager may do everything at every site (the
all-sites scope itself comes from the group, see registry.access).
"""

from django.contrib.auth.management import create_permissions
from django.db import migrations

CLINICAL = ["patient", "procedure", "treatedlevel", "complication"]
ROLES = {
    "Site staff": {m: ["add", "change", "view"] for m in [*CLINICAL, "patientcontact"]}
    | {"site": ["view"]},
    "Site lead": {m: ["add", "change", "delete", "view"] for m in [*CLINICAL, "patientcontact"]}
    | {"site": ["view", "change"]},
    "Auditor": {m: ["view"] for m in [*CLINICAL, "site"]},
    "Registry manager": {
        m: ["add", "change", "delete", "view"] for m in [*CLINICAL, "patientcontact", "site"]
    },
}


def create_groups(apps, schema_editor):
    # Permissions are normally created after migrate; make sure they exist now.
    for app_config in apps.get_app_configs():
        app_config.models_module = True
        create_permissions(app_config, verbosity=0, apps=apps)
        app_config.models_module = None
    Group = apps.get_model("auth", "Group")
    Permission = apps.get_model("auth", "Permission")
    for name, models in ROLES.items():
        group, _created = Group.objects.get_or_create(name=name)
        codenames = [f"{action}_{model}" for model, actions in models.items() for action in actions]
        perms = Permission.objects.filter(
            content_type__app_label="registry", codename__in=codenames
        )
        assert perms.count() == len(codenames), f"missing permissions for {name}"
        group.permissions.add(*perms)


def remove_groups(apps, schema_editor):
    apps.get_model("auth", "Group").objects.filter(name__in=ROLES).delete()


class Migration(migrations.Migration):
    dependencies = [
        ("registry", "0001_initial"),
        ("auth", "0012_alter_user_first_name_max_length"),
        ("contenttypes", "0002_remove_content_type_name"),
    ]

    operations = [migrations.RunPython(create_groups, remove_groups)]
