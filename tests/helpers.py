import os
import subprocess
import sys
from pathlib import Path

import pytest


def python_in(folder: Path, *args: str) -> subprocess.CompletedProcess:
    """Run this interpreter with args inside folder, capturing its output as text."""
    return subprocess.run([sys.executable, *args], cwd=folder, capture_output=True, text=True)


def missing(message: str) -> None:
    """Skip a test that lacks something it needs; under CI, where nothing may be skipped, fail it."""
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(message)
    pytest.skip(message)
