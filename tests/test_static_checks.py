"""The checks that keep the layout: mypy strict on certctl_load/ and the import contracts (only the
plugin imports locust or flask, layers, no cycles), both configured in pyproject.toml."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.e2e

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent


def check(*command: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(command, capture_output=True, text=True, timeout=600, cwd=ROOT)


def test_mypy_strict_finds_no_error():
    done = check(sys.executable, "-m", "mypy")
    assert done.returncode == 0, done.stdout[-5000:] + done.stderr[-2000:]


def test_the_import_contracts_hold():
    done = check(str(BIN / "lint-imports"))
    assert done.returncode == 0, done.stdout[-5000:] + done.stderr[-2000:]
    assert "0 broken" in done.stdout
