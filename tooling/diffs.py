"""Step folders compared: the files that make up a step, the diff between two, and copies of one."""

from __future__ import annotations

import difflib
import re
import shutil
import subprocess
from pathlib import Path

from tooling import venv
from tooling.config import WORKBENCH_STEP, WorkshopError

NOT_PART_OF_A_STEP = re.compile(
    r"(^|/)(__pycache__|\.pytest_cache|\.ruff_cache)(/|$)|\.py[cod]$|\.sqlite3|^" + re.escape(WORKBENCH_STEP) + "$"
)


def is_test_file(path: str) -> bool:
    return path.startswith("tests/") or path == "pytest.ini"


def read_lines(path: Path) -> list[str]:
    return [line if line.endswith("\n") else line + "\n" for line in path.read_text(encoding="utf-8").splitlines(True)]


def step_files(folder: Path) -> list[str]:
    """The files that make up a step, as relative POSIX paths, without caches and databases."""
    paths = (path.relative_to(folder).as_posix() for path in folder.rglob("*") if path.is_file())
    return sorted(path for path in paths if not NOT_PART_OF_A_STEP.search(path))


def file_diffs(old: Path, new: Path, old_label: str = "a", new_label: str = "b"):
    """(path, unified diff lines) for each file that differs between two step folders."""
    old_files, new_files = set(step_files(old)), set(step_files(new))
    for path in sorted(old_files | new_files):
        before = read_lines(old / path) if path in old_files else []
        after = read_lines(new / path) if path in new_files else []
        old_name = f"{old_label}/{path}" if path in old_files else "/dev/null"
        new_name = f"{new_label}/{path}" if path in new_files else "/dev/null"
        lines = list(difflib.unified_diff(before, after, old_name, new_name))
        if lines:
            yield path, lines


def step_diff(old: Path, new: Path, old_label: str, new_label: str) -> str:
    """A unified diff of two step folders, the same on every operating system."""
    return "".join(line for _, lines in file_diffs(old, new, old_label, new_label) for line in lines)


# A line of these kinds is no code: blank, or a comment in Python, JavaScript, CSS, HTML or a Django template.
NOT_CODE = re.compile(r"^\s*(#|//|/\*|\*|<!--|\{#|$)")


def changed_code_lines(old: Path, new: Path) -> int:
    """The lines a step adds or removes in the code an attendee types: no tests, migrations, blanks or comments."""
    return sum(
        line[:1] in "+-" and not NOT_CODE.match(line[1:])
        for path, lines in file_diffs(old, new)
        if not is_test_file(path) and "/migrations/" not in f"/{path}"
        for line in lines[2:]  # after the two lines that name the files
    )


def copy_files(source: Path, destination: Path, paths: list[str]) -> None:
    for path in paths:
        (destination / path).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(source / path, destination / path)


def project_with_tests(code: Path, tests_from: Path, into: Path) -> Path:
    """Copy the project in folder `code` to `into`, with the tests and pytest.ini of step `tests_from` for its own.

    This is how a step's tests run on other code: on the step before it (a repository check that the tests
    test the lesson) and on workbench/ (check). The tests are copied at run time, never committed twice.
    """
    copy_files(code, into, [path for path in step_files(code) if not is_test_file(path)])
    copy_files(tests_from, into, [path for path in step_files(tests_from) if is_test_file(path)])
    return into


def step_changes(old: Path, new: Path) -> dict[str, list[str]]:
    """The files folder `new` adds, changes and removes compared with folder `old`."""
    old_files, new_files = set(step_files(old)), set(step_files(new))
    both = old_files & new_files
    return {
        "added": sorted(new_files - old_files),
        "changed": sorted(path for path in both if (old / path).read_bytes() != (new / path).read_bytes()),
        "removed": sorted(old_files - new_files),
    }


def new_django_project(folder: Path) -> Path:
    """What `django-admin startproject mysite .` and `python manage.py startapp chat` give: where step 01 starts."""
    python = str(venv.ensure_venv())
    folder.mkdir(parents=True)
    for command in (["-m", "django", "startproject", "mysite", "."], ["manage.py", "startapp", "chat"]):
        if subprocess.run([python, *command], cwd=folder).returncode:
            raise WorkshopError(f"`python {' '.join(command)}` could not create the Django project (see above).")
    return folder
