from django.apps import AppConfig
from django.db.models.signals import post_migrate
from django.utils.translation import gettext_lazy as _


def grant_app_role_after_migrate(sender, using: str = "default", **kwargs) -> None:
    """Every ``migrate`` (run as the owner) ends by granting the application's role its
    privileges on whatever tables now exist, so a new table is never left out."""
    from django.apps import apps
    from django.conf import settings

    from registry.roles import grant_app_role

    last_app = list(apps.get_app_configs())[-1]
    if settings.DATABASE_APP_ROLE and sender.label == last_app.label:
        grant_app_role(settings.DATABASE_APP_ROLE, using=using)


class RegistryConfig(AppConfig):
    default_auto_field = "django.db.models.BigAutoField"
    name = "registry"
    verbose_name = _("Registry")

    def ready(self) -> None:
        # Sent once per app after all migrations ran: the last app's signal is enough.
        post_migrate.connect(grant_app_role_after_migrate, dispatch_uid="registry.grant_app_role")
