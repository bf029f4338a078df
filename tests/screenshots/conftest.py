# The live server that ends the browser's leftover database sessions before the test database
# is dropped, and Playwright's limits grown with the machine's load (see tests/e2e/conftest.py).
from tests.e2e.conftest import _playwright_limits_follow_the_load, live_server  # noqa: F401
