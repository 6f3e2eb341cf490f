import os
import subprocess
import sys
from pathlib import Path


def python_in(folder: Path, *args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    """Run this interpreter with args inside folder, capturing its output as text."""
    return subprocess.run([sys.executable, *args], cwd=folder, env=env, capture_output=True, text=True)


OWN_DATABASE_SETTINGS = """\
from mysite.settings import *  # noqa: F403

DATABASES = {{"default": {{**DATABASES["default"], "NAME": {database!r}}}}}  # noqa: F405
"""


def with_own_database(folder: Path, env: dict[str, str] | None = None, settings_after: str = "") -> dict[str, str]:
    """The environment env (default: this one) for a step's manage.py, with the step's settings except for the
    database: a new file in folder, not the db.sqlite3 an attendee develops with; then settings_after, if any."""
    settings = folder / "own_database_settings.py"
    settings.write_text(OWN_DATABASE_SETTINGS.format(database=str(folder / "db.sqlite3")) + settings_after)
    env = dict(os.environ if env is None else env)
    python_path = os.pathsep.join(filter(None, [str(folder), env.get("PYTHONPATH")]))
    return {**env, "DJANGO_SETTINGS_MODULE": settings.stem, "PYTHONPATH": python_path}


def driver_problem() -> str | None:
    """Why Playwright's driver, a Node.js program, cannot run here, and what to install, or None when it can run."""
    try:
        from playwright._impl._driver import compute_driver_executable

        node, _ = compute_driver_executable()
        result = subprocess.run([node, "--version"], capture_output=True, text=True, timeout=60)
        problem = None if result.returncode == 0 else (result.stderr or result.stdout).strip()
    except Exception as error:  # no Playwright, no Node.js in it, or one this system cannot execute
        problem = str(error)
    fix = "install the library it names (Debian, Ubuntu: sudo apt-get install libatomic1)"
    return problem and f"Playwright's driver cannot start here: {problem}. To run the browser tests, {fix}"
