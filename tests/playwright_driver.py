"""A pytest plugin for the steps' suites: skip the browser tests where Playwright's driver cannot even start.

Each step's browser fixture skips its tests when there is no Chromium, but it first starts Playwright's driver, a
Node.js program that needs libraries of its own (libatomic, which a minimal Debian lacks). Without them every
browser test would fail with the loader's message instead. workshop.py loads this plugin into every suite it runs.
Under CI, where nothing may be skipped, it leaves the tests to fail.
"""

import os
import subprocess

import pytest


def driver_problem() -> str | None:
    """Why Playwright's Node.js cannot run here, and what to install, or None when it can run."""
    try:
        from playwright._impl._driver import compute_driver_executable

        node, _ = compute_driver_executable()
        result = subprocess.run([node, "--version"], capture_output=True, text=True, timeout=60)
        problem = None if result.returncode == 0 else (result.stderr or result.stdout).strip()
    except Exception as error:  # no Playwright, no Node.js in it, or one this system cannot execute
        problem = str(error)
    fix = "install the library it names (Debian, Ubuntu: sudo apt-get install libatomic1)"
    return problem and f"Playwright's driver cannot start here: {problem}. To run the browser tests, {fix}"


def pytest_collection_modifyitems(config, items):
    browser_tests = [item for item in items if "browser" in getattr(item, "fixturenames", ())]
    if not browser_tests or os.environ.get("CI", "").lower() == "true":
        return
    problem = driver_problem()
    if problem:
        for item in browser_tests:
            item.add_marker(pytest.mark.skip(reason=problem))
