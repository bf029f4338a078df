import pytest
from django.db import connection


@pytest.fixture(scope="session")
def live_server(django_db_setup, django_db_blocker, live_server):
    """pytest-django's live server, started after the test database exists and stopped
    before it is dropped.

    Playwright's sync API runs the test inside its own context (greenlet), where Django's
    connection handler keeps a separate connection that nothing in that context closes; end
    such leftover sessions so the test database can be dropped.
    """
    yield live_server
    with django_db_blocker.unblock(), connection.cursor() as cursor:
        cursor.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
            " WHERE datname = current_database() AND pid <> pg_backend_pid()"
        )
