import subprocess
import sys
from pathlib import Path


def python_in(folder: Path, *args: str) -> subprocess.CompletedProcess:
    """Run this interpreter with args inside folder, capturing its output as text."""
    return subprocess.run([sys.executable, *args], cwd=folder, capture_output=True, text=True)
