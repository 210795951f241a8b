from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.guest import in_sandbox_guest

ROOT = Path(__file__).resolve().parent.parent

# The e2e suite needs the sandbox guest (see tests/e2e/conftest.py); on a normal machine it is not
# collected, and README's test command runs it through `vsockport sandbox`.
collect_ignore = [] if in_sandbox_guest() else ["e2e"]


def run_cli(*args: str, cwd: Path | None = None, env: dict | None = None) -> subprocess.CompletedProcess:
    """The real command line in a real subprocess, as users and CI run it."""
    return subprocess.run(
        [sys.executable, "-m", "vsockport", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        env={**os.environ, **(env or {})},
        timeout=120,
    )


@pytest.fixture
def cli():
    return run_cli
