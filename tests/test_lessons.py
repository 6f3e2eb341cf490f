import os
import re
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from helpers import missing
from workshop import STEP_PAIRS, STEPS_DIR, CaseResult, project_with_tests, step_files, with_plugins

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


def skip_reasons(junit: Path) -> list[str] | None:
    """Why each test in pytest's report was skipped, or None when any test ran."""
    cases = list(ET.parse(junit).getroot().iter("testcase"))
    if not cases or any(CaseResult.from_junit(case).outcome != "skipped" for case in cases):
        return None
    return sorted({skipped.get("message", "") for case in cases for skipped in case.iter("skipped")})


@pytest.mark.parametrize(("old", "new"), STEP_PAIRS, ids=[new for _, new in STEP_PAIRS])
def test_a_steps_new_tests_fail_on_the_previous_steps_code(old, new, tmp_path):
    previous_code = project_with_tests(STEPS_DIR / old, STEPS_DIR / new, tmp_path / old)
    lesson_files = lesson_test_files(STEPS_DIR / old, STEPS_DIR / new)

    passing, all_skipped = [], {}
    for index, path in enumerate(lesson_files):
        junit = tmp_path / f"{index}.xml"
        command = [sys.executable, "-m", "pytest", "-x", "-q", "-p", "playwright_driver", f"--junitxml={junit}", path]
        code = subprocess.run(
            command, cwd=previous_code, env=with_plugins(dict(os.environ)), capture_output=True
        ).returncode
        # Exit code 1: some test failed; 2: the file could not even be collected (e.g. a missing module).
        if code in (1, 2):
            continue
        # A file whose every test was skipped (no browser, say) proves nothing either way.
        reasons = skip_reasons(junit) if junit.exists() else None
        if reasons is None:
            passing.append(path)
        else:
            all_skipped[path] = reasons

    assert lesson_files, f"{new} adds no test"
    assert passing == [], f"these {new} test files already pass on {old}, so they do not test the lesson"
    if all_skipped:
        missing(f"cannot tell whether these {new} tests fail on {old}: every one was skipped: {all_skipped}")
