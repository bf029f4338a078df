"""Staff accounts: repeated failed logins lock the username and the address (django-axes)
until a manager unlocks them; passwords of at least 12 characters; sessions end when idle;
an optional second factor (TOTP), required for managers when the setting is on."""

from __future__ import annotations

import datetime

import pytest
from axes.models import AccessAttempt
from django.contrib.auth import get_user_model
from django.contrib.auth.password_validation import validate_password
from django.core.exceptions import ValidationError
from django.urls import reverse
from django_otp.oath import totp
from django_otp.plugins.otp_totp.models import TOTPDevice

from tests.factories import make_user

LOGIN = "/admin/login/"
PASSWORD = "pw-for-tests-only"


def login(client, username: str, password: str, address: str = "10.0.0.1", **extra):
    return client.post(
        LOGIN, {"username": username, "password": password, **extra}, REMOTE_ADDR=address
    )


def logged_in(client) -> bool:
    return "_auth_user_id" in client.session


def test_thirty_wrong_passwords_lock_the_account_with_a_clear_message(client, staff_a, settings):
    statuses = [login(client, "staff.a", f"wrong-{i}").status_code for i in range(30)]

    assert statuses[0] == 200  # the form again, "enter a correct username and password"
    assert statuses[-1] == 429
    locked = login(client, "staff.a", PASSWORD)  # the right password no longer helps
    assert locked.status_code == 429
    assert "Too many failed logins" in locked.content.decode()
    assert not logged_in(client)


def test_a_stranger_who_knows_a_username_cannot_lock_its_owner_out(client, staff_a, settings):
    """The attack: ten wrong passwords for a known username from the attacker's address.
    Locked: that username from that address only; the owner logs in from their own."""
    for i in range(settings.AXES_FAILURE_LIMIT + 5):
        login(client, "staff.a", f"wrong-{i}", address="203.0.113.9")
    assert login(client, "staff.a", PASSWORD, address="203.0.113.9").status_code == 429

    owner = client.__class__()
    assert login(owner, "staff.a", PASSWORD, address="198.51.100.7").status_code == 302
    assert logged_in(owner)


def test_failures_for_many_usernames_from_one_address_lock_nobody_else(client, site_a, settings):
    for i in range(settings.AXES_FAILURE_LIMIT):
        login(client, f"someone-{i}", "wrong", address="10.0.0.66")
    make_user("Site staff", site_a, username="innocent")

    assert login(client, "innocent", PASSWORD, address="10.0.0.66").status_code == 302


PROXY = "10.0.0.5"


def through_proxy(client, username: str, password: str, forwarded_for: str):
    return client.post(
        LOGIN,
        {"username": username, "password": password},
        REMOTE_ADDR=PROXY,
        HTTP_X_FORWARDED_FOR=forwarded_for,
    )


def test_behind_the_proxy_a_strangers_failures_lock_out_no_staff_member(
    client, staff_a, manager, settings
):
    """The attack: behind the documented proxy every request has the proxy's REMOTE_ADDR;
    ten wrong passwords per staff username from one client must not lock out the others."""
    settings.TRUSTED_PROXIES = [PROXY]
    for username in ("staff.a", "manager"):
        for i in range(settings.AXES_FAILURE_LIMIT + 2):
            through_proxy(client, username, f"wrong-{i}", "203.0.113.9")
    assert through_proxy(client, "staff.a", PASSWORD, "203.0.113.9").status_code == 429
    assert set(AccessAttempt.objects.values_list("ip_address", flat=True)) == {"203.0.113.9"}

    nurse, boss = client.__class__(), client.__class__()
    assert through_proxy(nurse, "staff.a", PASSWORD, "198.51.100.7").status_code == 302
    assert through_proxy(boss, "manager", PASSWORD, "198.51.100.8").status_code == 302
    # the attacker cannot pose as the nurse: what the client writes into the header is left of
    # what the proxy appends, and an X-Forwarded-For not sent by the proxy is ignored
    assert (
        through_proxy(client, "staff.a", PASSWORD, "198.51.100.7, 203.0.113.9").status_code == 429
    )
    direct = client.post(
        LOGIN,
        {"username": "staff.a", "password": "wrong"},
        REMOTE_ADDR="203.0.113.9",
        HTTP_X_FORWARDED_FOR="198.51.100.7",
    )
    assert direct.status_code == 429
    assert not AccessAttempt.objects.filter(ip_address="198.51.100.7").exists()


def test_a_manager_unlocks_an_account_in_the_admin(client, staff_a, manager, settings):
    for i in range(settings.AXES_FAILURE_LIMIT):
        login(client, "staff.a", f"wrong-{i}")
    assert login(client, "staff.a", PASSWORD).status_code == 429
    attempts = AccessAttempt.objects.filter(username="staff.a")
    assert attempts.exists()

    admin = client.__class__()
    admin.force_login(manager)
    changelist = admin.get(reverse("admin:axes_accessattempt_changelist"))
    assert changelist.status_code == 200
    assert "staff.a" in changelist.content.decode()
    admin.post(
        reverse("admin:axes_accessattempt_changelist"),
        {"action": "delete_selected", "_selected_action": [a.pk for a in attempts], "post": "yes"},
    )

    assert not AccessAttempt.objects.filter(username="staff.a").exists()
    assert login(client, "staff.a", PASSWORD).status_code == 302
    assert logged_in(client)


@pytest.mark.parametrize(
    ("password", "refused"),
    [
        ("Tr0ub4dor&3x", False),
        ("Tr0ub4dor&3", True),
        ("123456789012", True),
        (" " * 12, True),
        ("aaaaaaaaaaaa", True),
        ("abababababab", True),
        ("correct horse battery", False),
    ],
)
def test_passwords_need_twelve_characters(password, refused, db):
    user = get_user_model()(username="nurse")
    if refused:
        with pytest.raises(ValidationError):
            validate_password(password, user)
    else:
        validate_password(password, user)


def test_a_session_ends_after_thirty_idle_minutes(client, staff_a, settings, time_machine):
    assert settings.SESSION_COOKIE_AGE == 30 * 60
    time_machine.move_to("2026-03-02 09:00Z", tick=False)
    assert login(client, "staff.a", PASSWORD).status_code == 302
    time_machine.move_to("2026-03-02 09:29Z", tick=False)
    assert client.get("/admin/").status_code == 200  # activity renews the session
    time_machine.move_to("2026-03-02 09:58Z", tick=False)
    assert client.get("/admin/").status_code == 200
    time_machine.move_to("2026-03-02 10:29Z", tick=False)

    response = client.get("/admin/")

    assert response.status_code == 302
    assert response["Location"].startswith(LOGIN)


# --- second factor ----------------------------------------------------------------------------


def current_code(device: TOTPDevice) -> str:
    code = totp(device.bin_key, step=device.step, t0=device.t0, digits=device.digits)
    return f"{code:06d}"


def test_staff_with_an_authenticator_must_give_its_code(client, staff_a, time_machine):
    time_machine.move_to(datetime.datetime.now(datetime.UTC), tick=False)
    device = TOTPDevice.objects.create(user=staff_a, name="phone", confirmed=True)

    without = login(client, "staff.a", PASSWORD)
    assert without.status_code == 200
    assert "Enter the code from your authenticator app." in without.content.decode()
    wrong = login(client, "staff.a", PASSWORD, otp_token="000000")
    assert "wrong or has expired" in wrong.content.decode()
    assert not logged_in(client)

    time_machine.shift(datetime.timedelta(seconds=5))  # django-otp slows retries after a miss
    assert login(client, "staff.a", PASSWORD, otp_token=current_code(device)).status_code == 302
    assert client.get("/admin/").status_code == 200


def test_staff_without_an_authenticator_log_in_with_the_password(client, staff_a, settings):
    settings.OTP_REQUIRED_FOR_MANAGERS = True
    assert login(client, "staff.a", PASSWORD).status_code == 302
    assert client.get("/admin/").status_code == 200


def test_managers_need_an_authenticator_when_the_setting_is_on(client, manager, settings):
    settings.OTP_REQUIRED_FOR_MANAGERS = True

    refused = login(client, "manager", PASSWORD)
    assert refused.status_code == 200
    assert "Registry managers need an authenticator app" in refused.content.decode()
    assert not logged_in(client)
    # a session from before the setting was on no longer opens the admin
    client.force_login(manager)
    assert client.get("/admin/").status_code == 302

    device = TOTPDevice.objects.create(user=manager, name="phone", confirmed=True)
    client.logout()
    assert login(client, "manager", PASSWORD, otp_token=current_code(device)).status_code == 302
    assert client.get("/admin/").status_code == 200


def test_managers_log_in_without_a_second_factor_when_the_setting_is_off(client, manager):
    assert login(client, "manager", PASSWORD).status_code == 302
    assert client.get("/admin/").status_code == 200


def test_a_manager_session_without_the_second_factor_cannot_read_the_api(client, manager, settings):
    client.force_login(manager)
    assert client.get("/api/v1/patients").status_code == 200
    settings.OTP_REQUIRED_FOR_MANAGERS = True

    assert client.get("/api/v1/patients").status_code == 403
