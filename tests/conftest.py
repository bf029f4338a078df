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


def pytest_collection_modifyitems(items):
    """Every transactional test restores the migrated data (role groups, permissions) after
    its flush. A flush after one test without it would leave the next transactional test
    with no groups; with it on every one, flushes skip post_migrate and the rows reload."""
    for item in items:
        marker = item.get_closest_marker("django_db")
        if marker is not None and marker.kwargs.get("transaction"):
            marker.kwargs["serialized_rollback"] = True
