"""What every benchmark prints besides its own figures: the load average when it starts and
when it ends, since a benchmark's figures mean nothing without the load they ran under (the
machine is often shared)."""

from __future__ import annotations

import os

import pytest


def load_average() -> str:
    one, five, fifteen = os.getloadavg()
    return f"load average {one:.2f} {five:.2f} {fifteen:.2f} (1/5/15 min, {os.cpu_count()} cores)"


@pytest.fixture(autouse=True)
def _print_load_average(request):
    print(f"\n{request.node.name}: {load_average()} at the start")
    yield
    print(f"\n{request.node.name}: {load_average()} at the end")
