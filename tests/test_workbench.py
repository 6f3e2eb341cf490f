import re
import sys
from pathlib import Path

import pytest

import workshop
from workshop import STEP_PAIRS, STEPS, STEPS_DIR, CaseResult, behaviours, is_test_file, step_changes, step_files


def files(folder: Path) -> dict[str, bytes]:
    return {path: (folder / path).read_bytes() for path in step_files(folder)}


@pytest.fixture
def workbench(tmp_path, monkeypatch):
    """A workbench in a temporary folder, whose checks run with this interpreter; steps/ must stay as it was."""
    folder = tmp_path / "workbench"
    monkeypatch.setattr(workshop, "WORKBENCH", folder)
    monkeypatch.setattr(workshop, "ensure_venv", lambda: Path(sys.executable))
    steps_before = files(STEPS_DIR)
    yield folder
    assert files(STEPS_DIR) == steps_before


def type_the_step(workbench: Path, step: Path, leave_out: tuple[str, ...] = ()) -> None:
    """What an attendee does: make the code in the workbench that of the step, except the files left out."""
    changes = step_changes(workbench, step)
    for path in changes["added"] + changes["changed"]:
        if not is_test_file(path) and path not in leave_out:
            (workbench / path).parent.mkdir(parents=True, exist_ok=True)
            (workbench / path).write_bytes((step / path).read_bytes())
    for path in changes["removed"]:
        if not is_test_file(path):
            (workbench / path).unlink()


def test_first_step_starts_from_a_new_django_project_and_passes_once_typed(workbench, capfd):
    assert workshop.main(["start", "01"]) == 0
    assert {"manage.py", "mysite/settings.py", "chat/apps.py", "chat/models.py"} <= set(step_files(workbench))
    assert workshop.main(["check"]) == 1
    assert "  FAIL  index page offers a focused room name form\n" in capfd.readouterr().out

    type_the_step(workbench, STEPS_DIR / STEPS[0])

    assert workshop.main(["check"]) == 0
    assert f"passes every test of step {STEPS[0]}" in capfd.readouterr().out


def test_check_names_the_behaviour_still_missing_until_it_is_typed(workbench, capfd):
    workshop.main(["start", "02"])
    type_the_step(workbench, STEPS_DIR / "02_echo_consumer", leave_out=("chat/views.py",))

    assert workshop.main(["check"]) == 1
    out = capfd.readouterr().out
    assert [line for line in out.splitlines() if line.startswith("  FAIL  ")] == [
        "  FAIL  room page has the chat log and message form"
    ]
    assert "  ok    message is echoed to the sender\n" in out

    type_the_step(workbench, STEPS_DIR / "02_echo_consumer")

    assert workshop.main(["check"]) == 0


@pytest.mark.parametrize(("old", "new"), STEP_PAIRS, ids=[new for _, new in STEP_PAIRS])
def test_compare_right_after_start_shows_the_lessons_diff(workbench, capsys, old, new):
    workshop.main(["start", new])
    capsys.readouterr()
    lesson = (workshop.DIFFS_DIR / f"{new}.diff").read_text(encoding="utf-8")

    assert workshop.main(["compare"]) == 0
    assert capsys.readouterr().out == re.sub(f"^--- steps/{old}/", "--- workbench/", lesson, flags=re.MULTILINE)


def test_start_lists_the_files_the_step_changes(workbench, capsys):
    workshop.main(["start", "02"])
    out = capsys.readouterr().out

    assert "  added    chat/consumers.py\n" in out
    assert "  changed  mysite/asgi.py\n" in out
    assert "tests/" not in out


def test_reset_restores_the_step_and_keeps_the_previous_workbench(workbench, capsys):
    workshop.main(["start", "02"])
    (workbench / "chat" / "views.py").write_text("# my own attempt\n", encoding="utf-8")

    assert workshop.main(["reset", "02"]) == 0
    assert files(workbench) == files(STEPS_DIR / "02_echo_consumer")
    [backup] = workbench.parent.glob("workbench.backup-*")
    assert (backup / "chat" / "views.py").read_text(encoding="utf-8") == "# my own attempt\n"
    capsys.readouterr()
    assert workshop.main(["compare"]) == 0
    assert "is the same as steps/02_echo_consumer" in capsys.readouterr().out


def remove_the_folder(workbench: Path) -> None:
    for path in sorted(workbench.rglob("*"), reverse=True):
        path.rmdir() if path.is_dir() else path.unlink()
    workbench.rmdir()


# The line add_a_syntax_error adds to the views of step 01, where step 02 starts: after them and a blank line.
ROOM_LIST = len((STEPS_DIR / "01_http" / "chat" / "views.py").read_text(encoding="utf-8").splitlines()) + 2


def add_a_syntax_error(workbench: Path) -> None:
    with (workbench / "chat" / "views.py").open("a", encoding="utf-8") as views:
        views.write("\ndef room_list(request:\n")


def delete_manage_py(workbench: Path) -> None:
    (workbench / "manage.py").unlink()


def forget_the_step(workbench: Path) -> None:
    (workbench / workshop.WORKBENCH_STEP).unlink()


def add_a_binary_file(workbench: Path) -> None:
    (workbench / "chat" / "static" / "chat" / "logo.png").write_bytes(b"\x89PNG\r\n\x1a\n\xff\xfe")


BROKEN = [
    (remove_the_folder, "check", "workbench/ does not exist yet. `python3 workshop.py start 01` creates it"),
    (remove_the_folder, "compare", "workbench/ does not exist yet."),
    (remove_the_folder, "run workbench", "workbench/ does not exist yet."),
    (add_a_syntax_error, "check", f"views.py, line {ROOM_LIST}: '(' was never closed in `def room_list(request:`"),
    (add_a_syntax_error, "run workbench", f"workbench/chat/views.py, line {ROOM_LIST}: '(' was never closed"),
    (delete_manage_py, "check", "workbench/ has no manage.py, which every step has, so Django cannot load it."),
    (forget_the_step, "check", "workbench/ does not say which step it is at"),
    (add_a_binary_file, "compare", "workbench/chat/static/chat/logo.png is not UTF-8 text."),
]


@pytest.mark.parametrize(
    ("damage", "command", "message"),
    BROKEN,
    ids=[f"{damage.__name__}-{command.replace(' ', '-')}" for damage, command, _ in BROKEN],
)
def test_a_broken_workbench_gets_a_one_paragraph_message(workbench, capsys, damage, command, message):
    workshop.main(["start", "02"])
    damage(workbench)
    capsys.readouterr()

    assert workshop.main(command.split()) == 2
    err = capsys.readouterr().err
    assert message in err
    assert len(err.strip().splitlines()) == 1, err


def test_check_runs_the_tests_that_load_even_if_one_file_does_not(tmp_path):
    (tmp_path / "pytest.ini").write_text("[pytest]\naddopts = -p no:cacheprovider\ntestpaths = tests\n")

    workshop.prepare_check(tmp_path)

    assert (tmp_path / "pytest.ini").read_text().splitlines()[1] == (
        "addopts = -p no:cacheprovider --continue-on-collection-errors --tb=short"
    )


def test_behaviours_are_test_names_in_plain_words_failures_first():
    cases = [
        CaseResult("tests.test_echo", "test_message_is_echoed_to_the_sender", "passed", ""),
        CaseResult("tests.test_handshake", "test_foreign_origin_is_refused[http://evil.example]", "failed", ""),
        CaseResult("tests.test_handshake", "test_foreign_origin_is_refused[http://other.example]", "passed", ""),
        CaseResult("", "tests.test_bad_input", "failed", "ModuleNotFoundError: No module named 'chat.messages'"),
        CaseResult("tests.test_room_page", "test_room_page_links_back_to_the_index", "skipped", ""),
    ]

    assert behaviours(cases) == [
        ("failed", "foreign origin is refused (fails for http://evil.example)"),
        ("failed", "tests/test_bad_input.py cannot be loaded: ModuleNotFoundError: No module named 'chat.messages'"),
        ("skipped", "room page links back to the index"),
        ("passed", "message is echoed to the sender"),
    ]
