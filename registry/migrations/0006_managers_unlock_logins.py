"""Registry managers unlock staff accounts locked by repeated failed logins (django-axes):
they see the failed attempts and delete them (Axes -> Access attempts)."""

from django.contrib.auth.management import create_permissions
from django.db import migrations

PERMISSIONS = [
    "view_accessattempt",
    "delete_accessattempt",
    "view_accesslog",
    "view_accessfailurelog",
]


def grant(apps, schema_editor):
    app_config = apps.get_app_config("axes")
    app_config.models_module = True
    create_permissions(app_config, verbosity=0, apps=apps)
    app_config.models_module = None
    Group = apps.get_model("auth", "Group")
    Permission = apps.get_model("auth", "Permission")
    managers, _created = Group.objects.get_or_create(name="Registry manager")
    perms = Permission.objects.filter(content_type__app_label="axes", codename__in=PERMISSIONS)
    assert perms.count() == len(PERMISSIONS), "missing axes permissions"
    managers.permissions.add(*perms)


def revoke(apps, schema_editor):
    Group = apps.get_model("auth", "Group")
    Permission = apps.get_model("auth", "Permission")
    perms = Permission.objects.filter(content_type__app_label="axes", codename__in=PERMISSIONS)
    for group in Group.objects.filter(name="Registry manager"):
        group.permissions.remove(*perms)


class Migration(migrations.Migration):
    dependencies = [
        ("registry", "0005_site_member_events_audit_append_only"),
        ("axes", "0010_accessattemptexpiration"),
    ]

    operations = [migrations.RunPython(grant, revoke)]
