from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class OutcomesConfig(AppConfig):
    default_auto_field = "django.db.models.BigAutoField"
    name = "outcomes"
    verbose_name = _("Outcomes")

    def ready(self):
        # The clinical forms and admin (registry) store warnings saved anyway through this
        # hook: registry imports nothing from outcomes.
        from outcomes.quality import saved_anyway
        from registry.warnings import set_acknowledgement_store

        set_acknowledgement_store(saved_anyway)
