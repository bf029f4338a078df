"""Who may read what through the API."""

from rest_framework.permissions import BasePermission

from registry.project.admin_site import otp_required


class CanViewModel(BasePermission):
    """Active users whose role may view the view's ``permission_model`` (Django's view
    permission: site staff, site leads, auditors and registry managers). Which rows they see
    is decided by each view's queryset (``for_user``: their sites)."""

    def has_permission(self, request, view) -> bool:
        user = request.user
        if not (user and user.is_authenticated and user.is_active):
            return False
        if request.auth is None and otp_required(user) and not user.is_verified():
            # A staff session without the second factor its user needs (tokens are their own
            # credential): the same refusal as the admin gives.
            return False
        meta = view.permission_model._meta
        return user.has_perm(f"{meta.app_label}.view_{meta.model_name}")
