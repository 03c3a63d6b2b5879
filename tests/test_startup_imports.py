"""A server process does not import pandas: pyogrio would (whenever it is installed: ortools
brings it), for ~40 MB of memory in every process that no gridgov code uses (gridgov.gdal)."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

pytest.importorskip("pandas")  # installed, as in production (ortools): the case that matters

CHECK = """
import sys
from gridgov.app import create_app
create_app()
assert "pyogrio" in sys.modules, "the app no longer imports pyogrio: this test checks nothing"
print("pandas" in sys.modules)
import pandas  # still importable afterwards
print(pandas.__name__)
"""


def test_the_app_starts_without_pandas():
    done = subprocess.run(
        [sys.executable, "-c", CHECK],
        capture_output=True,
        text=True,
        env={**os.environ, "GRIDGOV_LOG_LEVEL": "WARNING"},
        check=True,
        timeout=120,
    )
    assert done.stdout.split() == ["False", "pandas"], done.stdout + done.stderr
