"""Authentication backend: Django's ModelBackend, with a user's permissions, roles and sites
read in one query per request instead of four (user permissions, group permissions, the
registry manager check, the user's sites). Every admin page asks for all four; at registry
scale each query counts (the admin's budget is 8 queries a page), and scoping rows by a list
of site ids lets PostgreSQL plan with the site's real share of the rows."""

from __future__ import annotations

from django.contrib.auth.backends import ModelBackend

from registry.access import REGISTRY_MANAGER

# Our own SQL over Django's auth tables; the user id is a parameter.
ROLES_AND_PERMISSIONS_SQL = """
SELECT 'user', ct.app_label, p.codename
  FROM auth_user_user_permissions up
  JOIN auth_permission p ON p.id = up.permission_id
  JOIN django_content_type ct ON ct.id = p.content_type_id
 WHERE up.user_id = %(user)s
UNION ALL
SELECT 'group', ct.app_label, p.codename
  FROM auth_user_groups ug
  JOIN auth_group_permissions gp ON gp.group_id = ug.group_id
  JOIN auth_permission p ON p.id = gp.permission_id
  JOIN django_content_type ct ON ct.id = p.content_type_id
 WHERE ug.user_id = %(user)s
UNION ALL
SELECT 'role', g.name, ''
  FROM auth_user_groups ug
  JOIN auth_group g ON g.id = ug.group_id
 WHERE ug.user_id = %(user)s
UNION ALL
SELECT 'site', m.site_id::text, ''
  FROM registry_site_members m
 WHERE m.user_id = %(user)s
"""


def load_roles_and_permissions(user) -> None:
    """Fill the caches ModelBackend and ``registry.access`` read: ``_user_perm_cache``,
    ``_group_perm_cache``, ``_registry_manager_cache`` and ``_site_ids_cache`` (for this
    request's user object)."""
    from django.db import DEFAULT_DB_ALIAS, connections

    user_perms: set[str] = set()
    group_perms: set[str] = set()
    roles: set[str] = set()
    sites: set[int] = set()
    # From the primary, even inside reading_from_replica(): a revoked role or site must not
    # live on in a replica's lagging copy.
    with connections[DEFAULT_DB_ALIAS].cursor() as cursor:
        cursor.execute(ROLES_AND_PERMISSIONS_SQL, {"user": user.pk})
        for kind, first, second in cursor.fetchall():
            if kind == "role":
                roles.add(first)
            elif kind == "site":
                sites.add(int(first))
            else:
                (user_perms if kind == "user" else group_perms).add(f"{first}.{second}")
    user._user_perm_cache = user_perms
    user._group_perm_cache = group_perms
    user._registry_manager_cache = user.is_superuser or REGISTRY_MANAGER in roles
    user._site_ids_cache = frozenset(sites)


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
