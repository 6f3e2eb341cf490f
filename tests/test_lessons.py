import os
import re
import subprocess
import sys
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import NamedTuple

import pytest

from tooling.ci import missing
from tooling.config import STEP_PAIRS, STEPS_DIR
from tooling.diffs import project_with_tests, step_files
from tooling.junit import read_junit

TEST_FUNCTION = re.compile(r"^(?:async )?def (test_\w+)", re.MULTILINE)
# A pytest plugin, written beside the previous step's code, that runs only the tests named in NEW_TESTS.
# (Naming them on the command line would stop pytest at the first file that cannot even be loaded.)
# Once one of a file's tests has failed, it skips the file's others: one failure is all the check needs, and on the
# previous step's code most tests fail only when a timeout runs out.
ONLY_NEW_TESTS = """
import os

import pytest

NEW_TESTS = set(os.environ["NEW_TESTS"].split())
failed_files = set()


def pytest_collection_modifyitems(config, items):
    def is_new(item):
        return f"{item.path.relative_to(config.rootpath).as_posix()}::{item.originalname}" in NEW_TESTS

    config.hook.pytest_deselected(items=[item for item in items if not is_new(item)])
    items[:] = [item for item in items if is_new(item)]


def pytest_runtest_setup(item):
    if item.nodeid.split("::")[0] in failed_files:
        pytest.skip("another test of this file has failed already")


def pytest_runtest_logreport(report):
    if report.failed:
        failed_files.add(report.nodeid.split("::")[0])
"""


def names_of_tests(path: Path) -> set[str]:
    return set(TEST_FUNCTION.findall(path.read_text(encoding="utf-8"))) if path.exists() else set()


def new_tests(old: Path, new: Path) -> dict[str, list[str]]:
    """The tests a step adds, by file: together they describe what the step teaches."""
    added = {
        path: sorted(names_of_tests(new / path) - names_of_tests(old / path))
        for path in step_files(new)
        if path.startswith("tests/test_")
    }
    return {path: names for path, names in added.items() if names}


def outcomes_by_file(junit: Path) -> dict[str, set[str]]:
    """passed, failed or skipped, for the tests of each file in pytest's report; a file that cannot load fails."""
    outcomes: dict[str, set[str]] = {}
    for case in read_junit(junit)[1]:
        module = case.module or case.name  # a file that could not be loaded is reported under its module's name
        outcomes.setdefault(module.replace(".", "/") + ".py", set()).add(case.outcome)
    return outcomes


class LessonRun(NamedTuple):
    lessons: dict[str, list[str]]
    junit: Path
    finished: Future


@pytest.fixture(scope="module")
def lesson_runs(tmp_path_factory):
    """Each step's new tests run on the previous step's code, every step at once: most of their time is waiting."""
    with ThreadPoolExecutor(max_workers=len(STEP_PAIRS)) as pool:
        runs = {}
        for old, new in STEP_PAIRS:
            folder = tmp_path_factory.mktemp(new)
            previous_code = project_with_tests(STEPS_DIR / old, STEPS_DIR / new, folder / old)
            lessons = new_tests(STEPS_DIR / old, STEPS_DIR / new)
            junit = folder / "junit.xml"
            (previous_code / "only_new_tests.py").write_text(ONLY_NEW_TESTS, encoding="utf-8")
            new_test_ids = " ".join(f"{path}::{name}" for path, names in lessons.items() for name in names)
            command = [sys.executable, "-m", "pytest", "-q", "-p", "only_new_tests", "--continue-on-collection-errors"]
            finished = pool.submit(
                subprocess.run,
                [*command, f"--junitxml={junit}", *lessons],
                cwd=previous_code,
                env={**os.environ, "NEW_TESTS": new_test_ids},
                capture_output=True,
            )
            runs[new] = LessonRun(lessons, junit, finished)
        yield runs


@pytest.mark.parametrize(("old", "new"), STEP_PAIRS, ids=[new for _, new in STEP_PAIRS])
def test_a_steps_new_tests_fail_on_the_previous_steps_code(old, new, lesson_runs):
    """Each file in which a step adds tests has one of them fail on the step before: it tests the lesson."""
    lessons, junit, finished = lesson_runs[new]
    run = finished.result()

    assert lessons, f"{new} adds no test"
    assert junit.exists(), f"pytest did not run {new}'s tests on {old}:\n{run.stdout.decode(errors='replace')}"
    outcomes = outcomes_by_file(junit)
    said = run.stdout.decode(errors="replace")[-3000:]
    assert sorted(set(lessons) - set(outcomes)) == [], f"pytest reported nothing for these files; it said:\n{said}"
    passing = [path for path in lessons if "failed" not in outcomes[path] and "passed" in outcomes[path]]
    assert passing == [], f"these {new} test files already pass on {old}, so they do not test the lesson"
    # A file whose every new test was skipped (no browser, say) proves nothing either way.
    all_skipped = [path for path in lessons if outcomes[path] == {"skipped"}]
    if all_skipped:
        missing(f"cannot tell whether these {new} tests fail on {old}: every one was skipped: {all_skipped}")
