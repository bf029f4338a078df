"""`make help` lists every target of the Makefile with a line of help, so a newcomer finds
the screenshots and lint commands beside the two commands."""

import re
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.skipif(shutil.which("make") is None, reason="make is not installed")
def test_make_help_lists_every_target_with_its_help():
    targets = re.findall(r"^([a-z][a-z-]*):", (ROOT / "Makefile").read_text(), re.MULTILINE)
    shown = subprocess.run(  # noqa: S603 - fixed argument list
        ["make", "-s", "--no-print-directory", "help"],  # noqa: S607
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    ).stdout.splitlines()
    listed = {line.split()[1]: " ".join(line.split()[2:]) for line in shown}
    assert {"run", "test", "lint", "screenshots", "help"} <= set(listed)
    assert sorted(listed) == sorted(targets)
    assert all(listed.values()), listed
