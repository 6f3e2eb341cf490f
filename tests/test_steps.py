import json
import re
import subprocess

from workshop import (
    CONFIG,
    PROJECT_FILES,
    ROOT,
    STEP_PAIRS,
    STEPS,
    STEPS_DIR,
    changed_code_lines,
    new_project_like_step_01,
    step_files,
)

STRAY = re.compile(
    r"(^|/)(__pycache__|\.pytest_cache|\.ruff_cache|\.venv|venv|node_modules)/|\.py[cod]$|\.sqlite3|\.DS_Store$|\.log$"
)


def test_steps_json_lists_exactly_the_step_folders():
    folders = sorted(path.name for path in STEPS_DIR.iterdir() if path.is_dir())

    assert STEPS == folders


def test_steps_are_numbered_in_order():
    numbers = [int(slug.split("_")[0]) for slug in STEPS]

    assert numbers == list(range(1, len(STEPS) + 1))


def test_every_step_has_a_title_and_an_idea():
    steps = json.loads((ROOT / "steps.json").read_text(encoding="utf-8"))["steps"]

    assert all(step["title"].strip() and step["idea"].strip() for step in steps)


def test_every_step_has_a_time_in_minutes():
    """The time the guide gives for typing the step, in its outline and in its chapter's first line."""
    assert [
        step["slug"] for step in CONFIG["steps"] if not (isinstance(step.get("minutes"), int) and step["minutes"] > 0)
    ] == []


def test_every_step_is_a_whole_django_project(step):
    files = step_files(step)

    assert [name for name in [*PROJECT_FILES, "pytest.ini"] if name not in files] == []
    assert any(name.startswith("tests/test_") for name in files)


def test_a_step_keeps_every_file_name_of_the_step_before():
    for old, new in STEP_PAIRS:
        missing = set(step_files(STEPS_DIR / old)) - set(step_files(STEPS_DIR / new))
        assert missing == set(), f"{new} drops or renames files of {old}: {sorted(missing)}"


def test_each_step_changes_no_more_lines_of_code_than_its_budget(tmp_path):
    """A step's budget in steps.json counts the lines it adds or removes in the code an attendee types."""
    starting_points = [new_project_like_step_01(tmp_path / "new project"), *(STEPS_DIR / slug for slug in STEPS[:-1])]
    changed = {
        step["slug"]: (changed_code_lines(start, STEPS_DIR / step["slug"]), step["budget"])
        for start, step in zip(starting_points, CONFIG["steps"], strict=True)
    }

    assert {slug: lines for slug, lines in changed.items() if lines[0] > lines[1]} == {}, "(changed, budget) per step"


def test_no_stray_files_in_steps():
    listed = subprocess.run(
        ["git", "ls-files", "--cached", "--others", "--exclude-standard", "steps"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.splitlines()

    assert listed, "git lists no files under steps/"
    assert [path for path in listed if STRAY.search(path)] == []
