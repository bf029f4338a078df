import pytest
from django.db import connection
from playwright.sync_api import Browser, BrowserContext, expect

from tests.services import scaled

# Playwright's limits on a quiet machine (its own defaults: 30 s per action and navigation, 5 s
# per `expect`), grown with the machine's load like every other wait on a service.
ACTION_TIMEOUT_MS = 30_000
EXPECT_TIMEOUT_MS = 5_000


@pytest.fixture(autouse=True)
def _playwright_limits_follow_the_load(monkeypatch):
    """Every browser context a test opens (through ``Browser.new_context`` or
    ``Browser.new_page``) gets Playwright's default limits times ``scaled()``: a busy CI
    machine makes Chromium slower, not the page wrong. Actions still finish as soon as the
    page is ready."""
    timeout = scaled(ACTION_TIMEOUT_MS)
    expect.set_options(timeout=scaled(EXPECT_TIMEOUT_MS))
    context_new_page = BrowserContext.new_page
    browser_new_page = Browser.new_page

    def new_page_in_context(self, *args, **kwargs):
        self.set_default_timeout(timeout)
        self.set_default_navigation_timeout(timeout)
        return context_new_page(self, *args, **kwargs)

    def new_page_in_browser(self, *args, **kwargs):
        page = browser_new_page(self, *args, **kwargs)
        page.set_default_timeout(timeout)
        page.set_default_navigation_timeout(timeout)
        return page

    monkeypatch.setattr(BrowserContext, "new_page", new_page_in_context)
    monkeypatch.setattr(Browser, "new_page", new_page_in_browser)
    yield
    expect.set_options(timeout=EXPECT_TIMEOUT_MS)


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
