"""`pytest tests/unit` starts no PostgreSQL: the test plugin recognises a run of the unit tests
alone, so the fast tests stay fast on a machine without a database."""

import pytest

from registry.project.testing_db import UNIT_TESTS, only_unit_tests


@pytest.mark.parametrize(
    ("args", "unit_only"),
    [
        (["tests/unit"], True),
        (["tests/unit/test_scoring.py::test_odi_score", "-q", "-x"], True),
        (["-p", "no:cacheprovider", "-k", "slug", "tests/unit/"], True),
        ([], False),  # the whole suite (testpaths)
        (["tests/unit", "tests/registry"], False),
        (["tests"], False),
        (["-k", "admin"], False),
        (["tests/registry/test_models.py"], False),
    ],
)
def test_only_a_run_of_the_unit_tests_alone_skips_the_database(args, unit_only, monkeypatch):
    monkeypatch.chdir(UNIT_TESTS.parents[1])
    assert only_unit_tests(args) is unit_only
