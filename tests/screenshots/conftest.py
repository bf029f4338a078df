# The live server that ends the browser's leftover database sessions before the test database
# is dropped (see tests/e2e/conftest.py).
from tests.e2e.conftest import live_server  # noqa: F401
