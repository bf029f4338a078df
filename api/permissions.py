"""Who may read what through the API."""

from rest_framework.permissions import BasePermission


class CanViewModel(BasePermission):
    """Active users whose role may view the view's ``permission_model`` (Django's view
    permission: site staff, site leads, auditors and registry managers). Which rows they see
    is decided by each view's queryset (``for_user``: their sites)."""

    def has_permission(self, request, view) -> bool:
        user = request.user
        if not (user and user.is_authenticated and user.is_active):
            return False
        meta = view.permission_model._meta
        return user.has_perm(f"{meta.app_label}.view_{meta.model_name}")
