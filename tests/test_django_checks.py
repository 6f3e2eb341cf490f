from helpers import python_in, with_own_database


def test_manage_py_check_is_clean(step):
    result = python_in(step, "manage.py", "check", "--fail-level", "WARNING")

    assert result.returncode == 0, result.stderr


def test_models_and_migrations_agree(step, tmp_path):
    step_database = step / "db.sqlite3"
    step_database_existed = step_database.exists()
    # makemigrations reads which migrations a database has applied: here, one of its own, not the step's.
    result = python_in(step, "manage.py", "makemigrations", "--check", "--dry-run", env=with_own_database(tmp_path))

    assert result.returncode == 0, f"{step.name} has model changes without a migration:\n{result.stdout}"
    assert step_database.exists() == step_database_existed, f"the check created {step_database}"
