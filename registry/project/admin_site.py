"""The admin site: a login with an optional second factor (TOTP, django-otp).

A user with a confirmed authenticator device must give its code at login and the session is
verified with it; with ``OTP_REQUIRED_FOR_MANAGERS`` on, registry managers and superusers
cannot log in without one (``manage.py enroll_totp USERNAME`` gives them one).
"""

from __future__ import annotations

from django import forms
from django.conf import settings
from django.contrib import admin
from django.contrib.admin.forms import AdminAuthenticationForm
from django.utils.translation import gettext_lazy as _
from django_otp import devices_for_user, user_has_device
from django_otp.forms import OTPAuthenticationFormMixin

from registry.access import is_registry_manager


def otp_required(user) -> bool:
    """Whether ``user`` must pass a second factor to use the admin (asked once per request:
    the admin asks on every permission check)."""
    cached = getattr(user, "_otp_required_cache", None)
    if cached is None:
        # Read with the request's user by registry.project.auth, when it was.
        has_device = getattr(user, "_has_confirmed_device_cache", None)
        if has_device is None:
            has_device = user_has_device(user, confirmed=True)
        cached = has_device or (settings.OTP_REQUIRED_FOR_MANAGERS and is_registry_manager(user))
        user._otp_required_cache = cached
    return cached


class RegistryLoginForm(OTPAuthenticationFormMixin, AdminAuthenticationForm):
    otp_device = forms.CharField(required=False, widget=forms.HiddenInput)
    otp_challenge = forms.CharField(required=False, widget=forms.HiddenInput)
    otp_token = forms.CharField(
        label=_("Authenticator code"),
        required=False,
        widget=forms.TextInput(attrs={"autocomplete": "one-time-code", "inputmode": "numeric"}),
        help_text=_("The 6 digits from your authenticator app, if you have set one up."),
    )
    otp_error_messages = {
        **OTPAuthenticationFormMixin.otp_error_messages,
        "token_required": _("Enter the code from your authenticator app."),
        "invalid_token": _("That authenticator code is wrong or has expired. Try the next one."),
    }

    def _chosen_device(self, user):
        """The device picked on the form or, as the form offers no choice, the user's
        authenticator (staff have one)."""
        device = super()._chosen_device(user)
        if device is None:
            device = next(iter(devices_for_user(user, confirmed=True, for_verify=True)), None)
        return device

    def clean(self):
        self.cleaned_data = super().clean()
        user = self.get_user()
        if user is not None and otp_required(user):
            if not user_has_device(user, confirmed=True):
                raise forms.ValidationError(
                    _(
                        "Registry managers need an authenticator app to log in. Ask an "
                        "administrator to set one up for you."
                    ),
                    code="otp_device_required",
                )
            self.clean_otp(user)
        return self.cleaned_data


class RegistryAdminSite(admin.AdminSite):
    login_form = RegistryLoginForm
    login_template = "admin/registry/login.html"

    def has_permission(self, request) -> bool:
        if not super().has_permission(request):
            return False
        user = request.user
        # A session verified by a device needs no look-up of whether one is required.
        return user.is_verified() or not otp_required(user)
