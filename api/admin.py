"""API tokens and the export log, for registry managers only."""

from __future__ import annotations

from django import forms
from django.contrib import admin, messages
from django.contrib.auth import get_user_model
from django.core.exceptions import PermissionDenied
from django.template.response import TemplateResponse
from django.utils.translation import gettext_lazy as _
from django.utils.translation import ngettext
from knox.models import AuthToken

from api.models import ExportLog
from api.services import api_token_create, api_tokens_revoke
from registry.access import is_registry_manager
from registry.admin import ReadOnlyAdminMixin
from registry.admin_lists import EstimatedCountPaginator, year_filter


class ManagersOnly:
    """Visible to registry managers (and superusers) only, whatever the model permissions."""

    def has_module_permission(self, request):
        return is_registry_manager(request.user)

    def has_view_permission(self, request, obj=None):
        return is_registry_manager(request.user)


class TokenCreateForm(forms.Form):
    user = forms.ModelChoiceField(
        queryset=get_user_model().objects.filter(is_active=True).order_by("username"),
        help_text=_("The token acts as this user: it sees only the sites the user may see."),
    )


admin.site.unregister(AuthToken)  # knox's admin shows new tokens in a stored message


@admin.register(AuthToken)
class ApiTokenAdmin(ManagersOnly, admin.ModelAdmin):
    """Tokens are listed by their first characters; the token itself is shown once, on the
    page after it is created, and only its digest is stored."""

    list_display = ["token_key", "user", "created", "expiry"]
    list_filter = ["user"]
    search_fields = ["user__username", "token_key"]
    ordering = ["-created"]
    fields = ["token_key", "user", "created", "expiry"]
    readonly_fields = fields
    actions = ["revoke"]

    def has_add_permission(self, request):
        return is_registry_manager(request.user)

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return is_registry_manager(request.user)

    def get_actions(self, request):
        actions = super().get_actions(request)
        actions.pop("delete_selected", None)  # "revoke" says what it means
        return actions

    @admin.action(description=_("Revoke the selected API tokens"), permissions=["delete"])
    def revoke(self, request, queryset):
        tokens = list(queryset.select_related("user"))
        for token in tokens:
            self.log_deletion(request, token, f"API token {token.token_key}… of {token.user}")
        count = api_tokens_revoke(tokens=queryset)
        message = ngettext("%d token revoked.", "%d tokens revoked.", count) % count
        self.message_user(request, message, messages.SUCCESS)

    def add_view(self, request, form_url="", extra_context=None):
        if not self.has_add_permission(request):
            raise PermissionDenied
        form = TokenCreateForm(request.POST or None)
        token = None
        if request.method == "POST" and form.is_valid():
            user = form.cleaned_data["user"]
            created, token = api_token_create(user=user)
            self.log_addition(request, created, f"API token {created.token_key}… for {user}")
        context = {
            **self.admin_site.each_context(request),
            "title": _("New API token"),
            "opts": self.model._meta,
            "form": form,
            "token": token,
            "token_user": form.cleaned_data["user"] if token else None,
        }
        response = TemplateResponse(request, "admin/api/new_token.html", context)
        response["Cache-Control"] = "no-store"  # the token is on this page only
        return response


@admin.register(ExportLog)
class ExportLogAdmin(ReadOnlyAdminMixin, ManagersOnly, admin.ModelAdmin):
    list_display = ["started_at", "user", "kind", "resource", "rows", "completed", "filters"]
    # One row per API read: a table that grows into millions. No exact count, no SELECT
    # DISTINCT for a filter's choices (resources are searched, not listed), years by index.
    list_filter = ["kind", "completed", "user", year_filter("started_at")]
    search_fields = ["user__username", "resource"]
    show_full_result_count = False
    paginator = EstimatedCountPaginator
    readonly_fields = [
        "user", "kind", "resource", "filters", "rows", "completed", "started_at", "finished_at",
    ]  # fmt: skip
    fields = readonly_fields
    list_select_related = ["user"]
