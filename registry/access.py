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
    """A value ``registry.project.auth`` reads with the user's permissions, in one query per
    request (the user object of the request holds it)."""
    if getattr(user, cache, None) is None:
        from registry.project.auth import load_roles_and_permissions

        load_roles_and_permissions(user)
    return getattr(user, cache)


def staff_code_of(user_id: int | None) -> str | None:
    """The code of :func:`staff_code` for one user id, in Python (``None`` for none)."""
    return None if user_id is None else f"S{user_id:05d}"


def staff_code(user_field: str):
    """The pseudonymous code of the staff user in ``user_field`` (a foreign key to the user),
    as an SQL expression: ``S`` and the user's id in five digits (``S00042``), NULL for none.

    The API and the exports name staff by this code, never by name: a registry manager can
    look a code up (the user's id in the admin), an auditor cannot.
    """
    from django.db.models import Case, CharField, Value, When
    from django.db.models.functions import Cast, Concat, LPad

    code = Concat(Value("S"), LPad(Cast(user_field, CharField()), 5, Value("0")))
    return Case(
        When(**{f"{user_field}__isnull": False}, then=code),
        default=None,
        output_field=CharField(),
    )
