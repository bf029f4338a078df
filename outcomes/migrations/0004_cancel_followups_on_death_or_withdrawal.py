"""Recording a death or a withdrawal of consent cancels every pending follow-up at once.

A trigger on the registry's patient table (owned here, so ``registry`` knows nothing of
follow-ups) runs in the same transaction as the update: admin edits, imports and
``QuerySet.update()`` all cancel immediately, not at the next sweep.
"""

from django.contrib.auth.management import create_permissions
from django.db import migrations

CREATE = """
CREATE OR REPLACE FUNCTION outcomes_cancel_followups_of_patient() RETURNS trigger AS $$
BEGIN
    IF NEW.date_of_death IS NOT NULL OR NEW.consent_withdrawn_date IS NOT NULL THEN
        UPDATE outcomes_followup f
        SET state = 'cancelled',
            cancel_reason = CASE WHEN NEW.date_of_death IS NOT NULL
                                 THEN 'death' ELSE 'withdrawal' END
        FROM registry_procedure p
        WHERE f.procedure_id = p.id AND p.patient_id = NEW.id
          AND f.state NOT IN ('completed', 'missed', 'cancelled');
    END IF;
    RETURN NEW;
END;
$$ LANGUAGE plpgsql;

CREATE TRIGGER outcomes_cancel_followups
AFTER INSERT OR UPDATE OF date_of_death, consent_withdrawn_date ON registry_patient
FOR EACH ROW EXECUTE FUNCTION outcomes_cancel_followups_of_patient();
"""
DROP = """
DROP TRIGGER IF EXISTS outcomes_cancel_followups ON registry_patient;
DROP FUNCTION IF EXISTS outcomes_cancel_followups_of_patient();
"""

ROLES = {
    "Site staff": {"followup": ["change", "view"], "contactattempt": ["view"]},
    "Site lead": {"followup": ["change", "view"], "contactattempt": ["view"]},
    "Auditor": {"followup": ["view"], "contactattempt": ["view"]},
    "Registry manager": {"followup": ["change", "view"], "contactattempt": ["view"]},
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
        Group.objects.get(name=name).permissions.add(*perms)


class Migration(migrations.Migration):
    dependencies = [("outcomes", "0003_followups"), ("registry", "0002_role_groups")]
    operations = [
        migrations.RunSQL(CREATE, DROP),
        migrations.RunPython(grant, migrations.RunPython.noop),
    ]
