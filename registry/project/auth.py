"""Authentication backend: Django's ModelBackend, with a user's permissions, roles and sites
read in one query per request instead of four (user permissions, group permissions, the
registry manager check, the user's sites), by ``registry.access.load_roles_and_permissions``.
Every admin page asks for all four; at registry scale each query counts (the admin's budget
is 8 queries a page), and scoping rows by a list of site ids lets PostgreSQL plan with the
site's real share of the rows."""

from __future__ import annotations

from django.contrib.auth.backends import ModelBackend

from registry.access import load_roles_and_permissions


class RegistryModelBackend(ModelBackend):
    """ModelBackend whose permission caches are filled by one query (see module docstring).
    Superusers keep ModelBackend's "every permission" answer."""

    def _get_permissions(self, user_obj, obj, from_name):
        if (
            user_obj.is_active
            and not user_obj.is_anonymous
            and not user_obj.is_superuser
            and obj is None
            and not hasattr(user_obj, f"_{from_name}_perm_cache")
        ):
            load_roles_and_permissions(user_obj)
        return super()._get_permissions(user_obj, obj, from_name)
