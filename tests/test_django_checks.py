import json

import pytest

from helpers import python_in, with_own_database

CHECK = "check --fail-level WARNING"
MAKEMIGRATIONS = "makemigrations --check --dry-run"
# The step's manage.py run for each command in turn, in one interpreter, each command's exit code and output kept:
# Django and the step start once for both checks, not once each.
MANAGE_PY_FOR_EACH = """
import contextlib
import io
import json
import runpy
import sys

results = {}
for command in sys.argv[1:]:
    sys.argv = ["manage.py", *command.split()]
    stdout, stderr = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(stdout), contextlib.redirect_stderr(stderr):
        try:
            runpy.run_path("manage.py", run_name="__main__")
            code = 0
        except SystemExit as exit:
            code = 0 if exit.code is None else exit.code
    results[command] = {"code": code, "stdout": stdout.getvalue(), "stderr": stderr.getvalue()}
print(json.dumps(results))
"""


@pytest.fixture(scope="module")
def checked(tmp_path_factory):
    """Each step's results of both commands, by command, and whether its db.sqlite3 appeared meanwhile."""
    steps = {}

    def results(step):
        if step not in steps:
            step_database = step / "db.sqlite3"
            step_database_existed = step_database.exists()
            # makemigrations reads which migrations a database has applied: here, one of its own, not the step's.
            env = with_own_database(tmp_path_factory.mktemp(step.name))
            run = python_in(step, "-c", MANAGE_PY_FOR_EACH, CHECK, MAKEMIGRATIONS, env=env)
            assert run.returncode == 0, run.stderr
            steps[step] = json.loads(run.stdout.splitlines()[-1]), step_database.exists() != step_database_existed
        return steps[step]

    return results


def test_manage_py_check_is_clean(step, checked):
    result = checked(step)[0][CHECK]

    assert result["code"] == 0, result["stderr"]


def test_models_and_migrations_agree(step, checked):
    results, created_the_steps_database = checked(step)
    result = results[MAKEMIGRATIONS]

    assert result["code"] == 0, f"{step.name} has model changes without a migration:\n{result['stdout']}"
    assert not created_the_steps_database, f"the check created {step / 'db.sqlite3'}"
