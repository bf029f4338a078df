"""django.contrib.admin with the registry's admin site (login with an optional second
factor). Kept apart from the site itself: app configs are imported before models exist."""

from django.contrib.admin.apps import AdminConfig


class RegistryAdminConfig(AdminConfig):
    default_site = "registry.project.admin_site.RegistryAdminSite"
