import re
from pathlib import Path

import pytest

from helpers import python_in
from workshop import STEP_PAIRS, STEPS_DIR, project_with_tests, step_files

TEST_FUNCTION = re.compile(r"^(?:async )?def (test_\w+)", re.MULTILINE)


def names_of_tests(path: Path) -> set[str]:
    return set(TEST_FUNCTION.findall(path.read_text(encoding="utf-8"))) if path.exists() else set()


def lesson_test_files(old: Path, new: Path) -> list[str]:
    """The test files in which a step adds tests: together they describe what the step teaches."""
    return [
        path
        for path in step_files(new)
        if path.startswith("tests/test_") and names_of_tests(new / path) - names_of_tests(old / path)
    ]


@pytest.mark.parametrize(("old", "new"), STEP_PAIRS, ids=[new for _, new in STEP_PAIRS])
def test_a_steps_new_tests_fail_on_the_previous_steps_code(old, new, tmp_path):
    previous_code = project_with_tests(STEPS_DIR / old, STEPS_DIR / new, tmp_path / old)
    lesson_files = lesson_test_files(STEPS_DIR / old, STEPS_DIR / new)

    # Exit code 1: some test failed; 2: the file could not even be collected (e.g. a missing module).
    passing = [
        path
        for path in lesson_files
        if python_in(previous_code, "-m", "pytest", "-x", "-q", path).returncode not in (1, 2)
    ]

    assert lesson_files, f"{new} adds no test"
    assert passing == [], f"these {new} test files already pass on {old}, so they do not test the lesson"
