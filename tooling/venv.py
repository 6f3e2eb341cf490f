"""The Python workshop.py runs on, the virtual environment .venv the steps run in, and the lock of its packages."""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
from pathlib import Path

from tooling.config import (
    CONFIG,
    LOCK,
    NEWEST_PYTHON,
    OLDEST_PYTHON,
    REQUIREMENTS,
    ROOT,
    VENV,
    WorkshopError,
    supported_pythons,
)

LOCK_COMMAND = "python3 workshop.py lock"


def check_python() -> None:
    if not OLDEST_PYTHON <= sys.version_info[:2] <= NEWEST_PYTHON:
        example = CONFIG["python"]["newest"]
        running = f"{sys.executable} is Python {sys.version.split()[0]}"
        raise WorkshopError(
            f"this workshop needs Python {supported_pythons()}, but {running}.\n"
            f"Install a supported Python and run this script with it, e.g. `python{example} workshop.py ...` "
            f"(Windows: `py -{example} workshop.py ...`)."
        )


def venv_python() -> Path:
    return VENV / ("Scripts/python.exe" if os.name == "nt" else "bin/python")


def ensure_venv() -> Path:
    """Create .venv and install requirements.lock, skipping what is already done."""
    python = venv_python()
    if not python.exists():
        print("workshop: creating .venv", flush=True)
        if subprocess.run([sys.executable, "-m", "venv", "--clear", str(VENV)]).returncode:
            raise WorkshopError(
                "could not create the virtual environment .venv. On Debian or Ubuntu install venv support "
                "first (`sudo apt install python3-venv`), then run this command again."
            )
    stamp = VENV / "requirements.lock.sha256"
    wanted = hashlib.sha256(LOCK.read_bytes()).hexdigest()
    if not stamp.exists() or stamp.read_text() != wanted:
        print("workshop: installing requirements.lock into .venv", flush=True)
        # Wheels only: a package without one for this Python and system stops here with its name, instead of
        # failing later in a C compiler the attendee may not have.
        install = [str(python), "-m", "pip", "install", "--disable-pip-version-check", "-q", "--only-binary=:all:"]
        if subprocess.run([*install, "-r", str(LOCK)]).returncode:
            raise WorkshopError(
                "pip could not install requirements.lock (see its message above). Every package in it has a wheel "
                f"for Python {supported_pythons()} on Linux, macOS and Windows (x86-64, and ARM on Linux and macOS); "
                "elsewhere, or without a network, some cannot be installed."
            )
        stamp.write_text(wanted)
    return python


def lock() -> int:
    """Write requirements.lock: what requirements.txt pulls in, pinned, with markers for each Python and system."""
    python = str(ensure_venv())
    compile_lock = [
        *("-m", "uv", "pip", "compile", "--quiet", "--universal", "--only-binary", ":all:", "--no-python-downloads"),
        # Trust the certificates the system trusts, as pip does, not only uv's own: behind a proxy that matters.
        "--system-certs",
        *("--python-version", CONFIG["python"]["oldest"], "--custom-compile-command", LOCK_COMMAND),
        *(REQUIREMENTS.name, "--output-file", LOCK.name),
    ]
    if subprocess.run([python, *compile_lock], cwd=ROOT).returncode:
        raise WorkshopError(f"uv could not pin the packages of {REQUIREMENTS.name} (see its message above).")
    print(f"workshop: wrote {LOCK.name}; commit it with {REQUIREMENTS.name}")
    return 0
