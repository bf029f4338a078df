import pytest
from django.core.cache import cache
from django.test import override_settings

from tests.factories import make_site, make_user

# Django's PBKDF2 with a million rounds costs 0.5-2 s per password hashed or checked (every
# make_user, every login with a password): minutes over the run. Tests check who may log
# in, not the hash's strength, so they hash with MD5; the production hasher is guarded by
# tests/registry/test_security_settings.py (test_production_hashes_passwords_with_pbkdf2).
FAST_PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture(scope="session", autouse=True)
def _fast_password_hashing():
    """For the whole run, before any fixture creates a user (session scope, autouse)."""
    with override_settings(PASSWORD_HASHERS=FAST_PASSWORD_HASHERS):
        yield


@pytest.fixture(autouse=True)
def _fresh_rate_limits():
    """API throttling counts in the (per-process) cache: each test starts with none."""
    cache.clear()


@pytest.fixture
def site_a(db):
    return make_site("AAA")


@pytest.fixture
def site_b(db):
    return make_site("BBB")


@pytest.fixture
def staff_a(site_a):
    return make_user("Site staff", site_a, username="staff.a")


@pytest.fixture
def staff_b(site_b):
    return make_user("Site staff", site_b, username="staff.b")


@pytest.fixture
def manager(db):
    return make_user("Registry manager", username="manager")


@pytest.fixture
def client_a(client, staff_a):
    client.force_login(staff_a)
    return client
