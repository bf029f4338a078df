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
    cached = getattr(user, "_registry_manager_cache", None)
    if cached is None:
        cached = user.groups.filter(name=REGISTRY_MANAGER).exists()
        user._registry_manager_cache = cached
    return cached
