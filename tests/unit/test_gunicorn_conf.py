"""gunicorn.conf.py's hooks: a leaving worker ends at once with the exit code it was leaving
with (the master tells a worker that failed to boot by it), and the master, which gunicorn
also calls ``worker_exit`` in for a worker that vanished, is never ended by it."""

from __future__ import annotations

import os
import runpy
from pathlib import Path
from types import SimpleNamespace

import pytest

CONF = runpy.run_path(str(Path(__file__).resolve().parents[2] / "gunicorn.conf.py"))


def _leave_in_a_child(code) -> int:
    """Fork; in the child, leave with ``sys.exit(code)`` through the hook as gunicorn's
    worker does (the hook runs in a ``finally``); returns the child's exit status."""
    pid = os.fork()
    if pid == 0:  # the child: never returns to pytest
        from django.db import connections

        # A connection this process inherited is the parent's socket: closing it from here
        # would end the parent's session (a worker closes only connections of its own).
        connections.close_all = lambda: None
        try:
            try:
                raise SystemExit(code)
            finally:
                CONF["worker_exit"](None, SimpleNamespace(pid=os.getpid()))
        except BaseException:  # the hook did not end the process: say so by the status
            os._exit(99)
    _pid, status = os.waitpid(pid, 0)
    return os.waitstatus_to_exitcode(status)


@pytest.mark.parametrize(("code", "status"), [(0, 0), (None, 0), (3, 3), ("error", 1)])
def test_a_leaving_worker_ends_with_its_own_exit_code(code, status):
    assert _leave_in_a_child(code) == status


def test_the_master_is_not_ended_for_a_worker_that_vanished():
    try:
        raise SystemExit(0)
    except SystemExit:
        assert CONF["worker_exit"](None, SimpleNamespace(pid=os.getpid() + 1)) is None


def test_nothing_is_imported_in_the_master_without_the_preloaded_application():
    server = SimpleNamespace(cfg=SimpleNamespace(preload_app=False))
    assert CONF["when_ready"](server) is None
