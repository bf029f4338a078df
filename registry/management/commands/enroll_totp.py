"""Give a staff user an authenticator (TOTP) device and print its set-up link once."""

from __future__ import annotations

from django_otp.plugins.otp_totp.models import TOTPDevice

from registry.management.user_command import UserCommand


class Command(UserCommand):
    help = (
        "Create a confirmed TOTP device for USERNAME (replacing any earlier one) and print the "
        "otpauth:// link to add to an authenticator app (or to turn into a QR code)."
    )

    def handle_user(self, user) -> None:
        TOTPDevice.objects.filter(user=user).delete()
        device = TOTPDevice.objects.create(user=user, name="authenticator", confirmed=True)
        self.stdout.write(device.config_url)
