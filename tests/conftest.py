import pytest
from django.core.cache import cache

from tests.factories import make_site, make_user


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
