"""Who may see what: roles are Django groups created by a data migration."""

from __future__ import annotations

SITE_STAFF = "Site staff"
SITE_LEAD = "Site lead"
AUDITOR = "Auditor"
REGISTRY_MANAGER = "Registry manager"


def is_registry_manager(user) -> bool:
    """A registry manager (or superuser) sees every site's records."""
    if not getattr(user, "is_authenticated", False) or not user.is_active:
        return False
    if user.is_superuser:
        return True
    return _per_request(user, "_registry_manager_cache")


def site_ids(user) -> frozenset[int]:
    """The ids of the sites ``user`` is a member of."""
    return _per_request(user, "_site_ids_cache")


def _per_request(user, cache: str):
    """A value read with the user's permissions, in one query per request (the user object
    of the request holds it)."""
    if getattr(user, cache, None) is None:
        load_roles_and_permissions(user)
    return getattr(user, cache)


STAFF_CODE_PREFIX, STAFF_CODE_DIGITS = "S", 5


def staff_code_of(user_id: int | None) -> str | None:
    """The pseudonymous code of the staff user with id ``user_id`` (``S00042``), None for
    none: the Python twin of ``staff_code``, for values already loaded."""
    if user_id is None:
        return None
    return f"{STAFF_CODE_PREFIX}{user_id:0{STAFF_CODE_DIGITS}d}"


# Our own SQL over Django's auth tables. ``{user}`` is the user's id: a parameter when read
# on its own, the outer query's column when read with the user (registry.project.auth).
GRANTS_SQL = """
SELECT 'user', ct.app_label, p.codename
  FROM auth_user_user_permissions up
  JOIN auth_permission p ON p.id = up.permission_id
  JOIN django_content_type ct ON ct.id = p.content_type_id
 WHERE up.user_id = {user}
UNION ALL
SELECT 'group', ct.app_label, p.codename
  FROM auth_user_groups ug
  JOIN auth_group_permissions gp ON gp.group_id = ug.group_id
  JOIN auth_permission p ON p.id = gp.permission_id
  JOIN django_content_type ct ON ct.id = p.content_type_id
 WHERE ug.user_id = {user}
UNION ALL
SELECT 'role', g.name, ''
  FROM auth_user_groups ug
  JOIN auth_group g ON g.id = ug.group_id
 WHERE ug.user_id = {user}
UNION ALL
SELECT 'site', m.site_id::text, ''
  FROM registry_site_members m
 WHERE m.user_id = {user}
"""
ROLES_AND_PERMISSIONS_SQL = GRANTS_SQL.format(user="%(user)s")


def load_roles_and_permissions(user) -> None:
    """Fill the caches ModelBackend (``registry.project.auth``) and this module read:
    ``_user_perm_cache``, ``_group_perm_cache``, ``_registry_manager_cache`` and
    ``_site_ids_cache`` (for this request's user object)."""
    from django.db import DEFAULT_DB_ALIAS, connections

    # From the primary, even inside reading_from_replica(): a revoked role or site must not
    # live on in a replica's lagging copy.
    with connections[DEFAULT_DB_ALIAS].cursor() as cursor:
        cursor.execute(ROLES_AND_PERMISSIONS_SQL, {"user": user.pk})
        fill_roles_and_permissions(user, cursor.fetchall())


def fill_roles_and_permissions(user, grants) -> None:
    """The caches of ``load_roles_and_permissions`` from the rows of ``GRANTS_SQL``
    (kind, app label or role or site id, codename)."""
    user_perms: set[str] = set()
    group_perms: set[str] = set()
    roles: set[str] = set()
    sites: set[int] = set()
    for kind, first, second in grants:
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


def staff_code(user_field: str):
    """The pseudonymous code of the staff user in ``user_field`` (a foreign key to the user),
    as an SQL expression: ``S`` and the user's id in five digits (``S00042``), NULL for none.

    The API and the exports name staff by this code, never by name: a registry manager can
    look a code up (the user's id in the admin), an auditor cannot.
    """
    from django.db.models import Case, CharField, Value, When
    from django.db.models.functions import Cast, Concat, LPad

    code = Concat(
        Value(STAFF_CODE_PREFIX),
        LPad(Cast(user_field, CharField()), STAFF_CODE_DIGITS, Value("0")),
    )
    return Case(
        When(**{f"{user_field}__isnull": False}, then=code),
        default=None,
        output_field=CharField(),
    )


def may_see_contact(user) -> bool:
    """The one rule "this user may see who the patient is": name, date of birth, phone and
    email. Site staff, site leads and registry managers may (they call and greet patients);
    auditors and the API's readers never do (they work on pseudonymised records)."""
    return user.has_perm("registry.view_patientcontact")
