from helpers import python_in


def test_manage_py_check_is_clean(step):
    result = python_in(step, "manage.py", "check", "--fail-level", "WARNING")

    assert result.returncode == 0, result.stderr


def test_models_and_migrations_agree(step):
    result = python_in(step, "manage.py", "makemigrations", "--check", "--dry-run")

    assert result.returncode == 0, f"{step.name} has model changes without a migration:\n{result.stdout}"
