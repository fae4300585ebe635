"""The `nsl` binary for the tests that compare with the command line: $NSL_BIN, else the
workspace's target/release/nsl or target/debug/nsl, else `nsl` on the PATH; the test is skipped
without one."""

import os
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def nsl_bin():
    candidates = [os.environ.get("NSL_BIN"), ROOT / "target/release/nsl", ROOT / "target/debug/nsl"]
    for c in candidates:
        if c and Path(c).is_file() and os.access(c, os.X_OK):
            return str(c)
    found = shutil.which("nsl")
    if found:
        return found
    pytest.skip("no nsl binary (set NSL_BIN or build target/release/nsl)")


def nsl(*args):
    """Runs `nsl ARGS…`, failing the test if it fails."""
    subprocess.run([nsl_bin(), *map(str, args)], check=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
