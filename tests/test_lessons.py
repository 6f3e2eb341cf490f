import pytest

from helpers import python_in
from workshop import STEP_PAIRS, STEPS_DIR, project_with_tests, step_changes


@pytest.mark.parametrize(("old", "new"), STEP_PAIRS, ids=[new for _, new in STEP_PAIRS])
def test_a_steps_new_tests_fail_on_the_previous_steps_code(old, new, tmp_path):
    previous_code = project_with_tests(STEPS_DIR / old, STEPS_DIR / new, tmp_path / old)
    changes = step_changes(STEPS_DIR / old, STEPS_DIR / new)
    # The test files a step adds or changes: together they describe what the step teaches.
    lesson_files = [path for path in changes["added"] + changes["changed"] if path.startswith("tests/test_")]

    # Exit code 1: some test failed; 2: the file could not even be collected (e.g. a missing module).
    passing = [
        path
        for path in lesson_files
        if python_in(previous_code, "-m", "pytest", "-x", "-q", path).returncode not in (1, 2)
    ]

    assert lesson_files, f"{new} adds or changes no test file"
    assert passing == [], f"these {new} test files already pass on {old}, so they do not test the lesson"
