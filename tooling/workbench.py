"""The workbench: a folder outside steps/ where an attendee types a step, then checks it with the step's own tests."""

from __future__ import annotations

import codecs
import contextlib
import io
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from tooling import venv
from tooling.config import (
    CHAPTERS_DIR,
    CONFIG,
    DIFFS_DIR,
    STEPS,
    STEPS_DIR,
    STEPS_WITHOUT_REDIS,
    WORKBENCH_STEP,
    WorkshopError,
    resolve_step,
)
from tooling.diffs import (
    copy_files,
    file_diffs,
    is_test_file,
    new_django_project,
    project_with_tests,
    step_changes,
    step_files,
)
from tooling.explain import behaviours, last_words, print_details, print_summary, pytest_stopped
from tooling.junit import CaseResult, read_junit
from tooling.processes import child_process
from tooling.reasons import calls_never_awaited, why_pytest_stopped
from tooling.redis_server import redis_environment
from tooling.serve import run
from tooling.suites import suite_passed
from tooling.words import command_line, number, plural, shown

# What the note's step is to the workbench, by its second line; a note from before there was one has none.
NOTED_AS = {
    "start": "the step it was last started for",
    "reset": "the step it was last reset to",
    "check": "the latest step whose tests it passed",
    "": "the step it was last started for or reset to",
}
# What code names when it uses Redis: the channels_redis layer, or the REDIS_URL setting it reads.
USES_REDIS = re.compile(r"\bchannels_redis\b|\bREDIS_URL\b")
# The command of the steps with a login that creates the users their chapters log in as.
DEMO_USERS = "chat/management/commands/create_demo_users.py"
# Files every step has; without them Django cannot load the workbench at all.
PROJECT_FILES = [
    "manage.py",
    "mysite/__init__.py",
    "mysite/settings.py",
    "mysite/urls.py",
    "mysite/asgi.py",
    "chat/__init__.py",
    "chat/apps.py",
]


# How each line of `pytest -q` starts while the tests run: a character for each test, e.g. `..F.s`.
PROGRESS = frozenset(".FEsxX")


class Progress:
    """Passes on pytest's progress lines as they come and keeps everything from the first other line on."""

    def __init__(self) -> None:
        self.decoder = io.IncrementalNewlineDecoder(codecs.getincrementaldecoder("utf-8")("replace"), translate=True)
        self.rest = ""
        self.line_start = True

    def feed(self, data: bytes, final: bool = False) -> None:
        text = self.decoder.decode(data, final)
        shown = 0
        if not self.rest:
            while shown < len(text) and not (self.line_start and text[shown] not in PROGRESS):
                self.line_start = text[shown] == "\n"
                shown += 1
            print(text[:shown], end="", flush=True)
        self.rest += text[shown:]


def run_pytest_quietly(python: str, folder: Path, env: dict[str, str]) -> tuple[int, list[CaseResult], str]:
    """Run pytest in folder, showing only its progress as it goes; return its code, its tests and the rest it said."""
    with tempfile.TemporaryDirectory() as scratch:
        junit, output = Path(scratch) / "junit.xml", Path(scratch) / "pytest.txt"
        progress = Progress()
        # A file, not a pipe: a server a test started and left running cannot keep it open and this waiting.
        with output.open("wb") as sink, output.open("rb") as source:
            command = [python, "-m", "pytest", "-q", f"--junitxml={junit}"]
            with child_process(command, cwd=folder, env=env, stdout=sink, stderr=subprocess.STDOUT) as process:
                while process.poll() is None:
                    with contextlib.suppress(subprocess.TimeoutExpired):
                        process.wait(timeout=0.2)
                    progress.feed(source.read())
            progress.feed(source.read(), final=True)
        _, cases = read_junit(junit)
    return process.returncode, cases, progress.rest


def note_lines(workbench: Path) -> list[str]:
    note = workbench / WORKBENCH_STEP
    return note.read_text(encoding="utf-8").splitlines() if note.is_file() else []


def noted_step(workbench: Path) -> str | None:
    lines = note_lines(workbench)
    noted = lines[0].strip() if lines else ""
    return noted if noted in STEPS else None


def noted_how(workbench: Path) -> str:
    """How workbench/ came to note its step: start, reset, check, or "" for a note that does not say."""
    lines = note_lines(workbench)
    how = lines[1].strip() if len(lines) > 1 else ""
    return how if how in NOTED_AS else ""


def note_step(workbench: Path, slug: str, how: str) -> None:
    (workbench / WORKBENCH_STEP).write_text(f"{slug}\n{how}\n", encoding="utf-8")


def require_workbench(workbench: Path) -> None:
    if not workbench.is_dir():
        state = "is a file, not a folder" if workbench.exists() else "does not exist yet"
        raise WorkshopError(
            f"{shown(workbench)}/ {state}. `{command_line('start', '01')}` creates it with a new Django project to "
            f"type step 01 in; `{command_line('start', '02')}` with the code step 02 starts from, and so on."
        )


def require_loadable(workbench: Path) -> None:
    """Stop with a plain explanation when Django could not even load workbench/: a file missing or unreadable."""
    require_workbench(workbench)
    missing = [path for path in PROJECT_FILES if not (workbench / path).is_file()]
    if missing:
        raise WorkshopError(
            f"{shown(workbench)}/ has no {' and no '.join(missing)}, which every step has, so Django cannot load it. "
            f"Put the file back (start and reset keep the previous workbench in a backup), or start over with "
            f"`{command_line('start', number(noted_step(workbench) or STEPS[0]))}`."
        )
    for path in step_files(workbench):
        if path.endswith(".py") and not is_test_file(path):
            try:
                compile((workbench / path).read_bytes(), path, "exec", dont_inherit=True)
            except (SyntaxError, ValueError) as error:  # ValueError: a null byte, before Python 3.12
                where = f", line {error.lineno}" if getattr(error, "lineno", None) else ""
                line = f" in `{error.text.strip()}`" if getattr(error, "text", None) else ""
                raise WorkshopError(
                    f"Python cannot read {shown(workbench / path)}{where}: {getattr(error, 'msg', error)}{line}. "
                    f"Nothing in {shown(workbench)}/ can run until that is fixed; fix it, then run this command again."
                ) from None


def uses_redis(project: Path) -> bool:
    """Whether the project's code, tests aside, names Redis: then serving it needs a Redis, whatever step it notes."""
    code = [path for path in step_files(project) if path.endswith(".py") and not is_test_file(path)]
    return any(USES_REDIS.search((project / path).read_text(encoding="utf-8", errors="replace")) for path in code)


def typed_ahead(workbench: Path, slug: str) -> tuple[str, str] | None:
    """The latest step after `slug` that adds a file of code workbench/ already has, and that file; None if none."""
    for later in reversed(STEPS[STEPS.index(slug) + 1 :]):
        before = STEPS_DIR / STEPS[STEPS.index(later) - 1]
        added = step_changes(before, STEPS_DIR / later)["added"]
        held = [path for path in added if not is_test_file(path) and (workbench / path).is_file()]
        if held:
            return later, held[0]
    return None


def step_in_workbench(workbench: Path) -> tuple[str, str]:
    """The step workbench/ notes, or a later one it holds a file of; and why that one. It must note a step."""
    slug, how = noted_step(workbench), noted_how(workbench)
    ahead = typed_ahead(workbench, slug)
    if ahead:
        later, path = ahead
        return later, f"since it holds {path}, which that step adds (it notes step {slug}, {NOTED_AS[how]})"
    return slug, NOTED_AS[how]


def workbench_step(name: str | None, workbench: Path, command: str) -> tuple[str, str]:
    """The step named on the command line, or else the one workbench/ is typed towards; and why that one, in words.

    That is the step it notes, unless it already holds a file that a later step adds: then it is that step.
    """
    require_workbench(workbench)
    if name:
        return resolve_step(name), ""
    if not noted_step(workbench):
        raise WorkshopError(
            f"{shown(workbench)}/ does not say which step it is at (start and reset note it in {WORKBENCH_STEP}). "
            f"Name the step, e.g. `{command_line(command, number(STEPS[-1]))}`."
        )
    return step_in_workbench(workbench)


def back_up(workbench: Path) -> Path | None:
    """Move workbench/ aside to a new workbench.backup-<date>-<time>/; nothing to do when it is missing or empty."""
    if not workbench.exists() or (workbench.is_dir() and not any(workbench.iterdir())):
        return None
    stamp = time.strftime("%Y%m%d-%H%M%S")
    backup, count = workbench.with_name(f"{workbench.name}.backup-{stamp}"), 1
    while backup.exists():
        count += 1
        backup = workbench.with_name(f"{workbench.name}.backup-{stamp}-{count}")
    try:
        workbench.rename(backup)
    except OSError as error:
        raise WorkshopError(
            f"could not move {shown(workbench)}/ aside to {shown(backup)}/ ({error.strerror}). If `run workbench` "
            f"is serving it, or a program has it open as its current folder, stop that first, then try again."
        ) from None
    return backup


def fill_workbench(workbench: Path, source: Path, slug: str, how: str) -> None:
    """Move what workbench/ holds to a backup, copy the files of folder `source` in and note the step, and how."""
    backup = back_up(workbench)
    if backup:
        print(f"workshop: moved the previous {shown(workbench)}/ to {shown(backup)}/")
    copy_files(source, workbench, step_files(source))
    note_step(workbench, slug, how)


def prepare_check(project: Path) -> None:
    """Have pytest run every test it can load and keep its tracebacks short, for check.

    Otherwise one test file importing a module not written yet stops the whole run; and the tracebacks are the
    details, after the list of what fails and why.
    """
    ini = project / "pytest.ini"
    options = "--continue-on-collection-errors --tb=short"
    text, found = re.subn(r"^addopts *=.*", rf"\g<0> {options}", ini.read_text("utf-8"), count=1, flags=re.M)
    ini.write_text(text if found else f"{text}addopts = {options}\n", encoding="utf-8")


def note_a_passed_step(workbench: Path, slug: str) -> None:
    """Note in workbench/ that it passes step `slug`, unless it notes a later step: the one being typed.

    So check, compare and `run workbench` go on from the step it passes, not from one it was reset to before.
    """
    noted = noted_step(workbench)
    if noted and STEPS.index(noted) > STEPS.index(slug):
        return
    note_step(workbench, slug, "check")
    if noted != slug:
        print(
            f"workshop: {shown(workbench)}/ now notes step {slug}: check and compare use it when no step is named, "
            f"and `{command_line('run', 'workbench')}` serves it as that step."
        )


def start_workbench(name: str, workbench: Path) -> int:
    """Fill workbench/ with the code step `name` starts from: the step before it, or a new Django project."""
    slug = resolve_step(name)
    index = STEPS.index(slug)
    with tempfile.TemporaryDirectory(ignore_cleanup_errors=True) as scratch:
        if index:
            origin, starting_point = f"steps/{STEPS[index - 1]}", STEPS_DIR / STEPS[index - 1]
        else:
            origin = "a new Django project (what `django-admin startproject mysite .` and `startapp chat` create)"
            starting_point = new_django_project(Path(scratch) / "project")
        fill_workbench(workbench, starting_point, slug, "start")
    changes = step_changes(workbench, STEPS_DIR / slug)
    code = [(kind, path) for kind, paths in changes.items() for path in paths if not is_test_file(path)]
    tests = sum(len(paths) for paths in changes.values()) - len(code)
    chapter = CHAPTERS_DIR / f"{slug}.md"
    guide = f"its chapter, {shown(chapter)}," if chapter.exists() else f"{shown(DIFFS_DIR / slug)}.diff"
    folder, title = f"{shown(workbench)}/", CONFIG["steps"][index]["title"]
    print(f"workshop: {folder} now holds {origin}: the code step {slug} ({title}) starts from.")
    files, them = ("file", "it") if len(code) == 1 else (f"{len(code)} files", "them")
    print(f"Step {number(slug)} changes the {files} below; {guide} shows every line to type.")
    print(f"Type {them} in {folder}, then run `{command_line('check')}` to see what works and what does not yet.\n")
    for kind, path in code:
        print(f"  {kind:<9}{path}")
    if tests:
        unlisted = (
            "test file the step adds or changes is"
            if tests == 1
            else f"{tests} test files the step adds or changes are"
        )
        print(f"\nThe {unlisted} not listed: check brings its own tests.")
    print(f"`{command_line('compare')}` shows what is left to type, `{command_line('run', 'workbench')}` serves it.")
    return 0


def reset_workbench(name: str, workbench: Path) -> int:
    """Replace workbench/ with the code of step `name`, as the workshop has it."""
    slug = resolve_step(name)
    fill_workbench(workbench, STEPS_DIR / slug, slug, "reset")
    print(f"workshop: {shown(workbench)}/ now holds steps/{slug}.")
    return 0


def check_workbench(name: str | None, workbench: Path) -> int:
    """Run a step's tests (default: the workbench's step) against the code in workbench/.

    What fails and why comes first, in plain words; pytest's own report, the details, after it.
    """
    slug, why = workbench_step(name, workbench, "check")
    require_loadable(workbench)
    python = str(venv.ensure_venv())
    folder = f"{shown(workbench)}/"
    if isinstance(sys.stdout, io.TextIOWrapper):
        sys.stdout.reconfigure(errors="replace")  # a console that cannot show every character of a report
    with tempfile.TemporaryDirectory(ignore_cleanup_errors=True) as scratch:
        project = project_with_tests(workbench, STEPS_DIR / slug, Path(scratch) / workbench.name)
        prepare_check(project)
        with redis_environment(python, slug not in STEPS_WITHOUT_REDIS) as env:
            print(f"workshop: running the tests of step {slug} on {folder}{f', {why}' if why else ''}", flush=True)
            code, cases, output = run_pytest_quietly(python, project, env)
    never_awaited = calls_never_awaited(output, project.name)
    cases = [with_call_never_awaited(case, never_awaited) for case in cases]
    stopped_with = last_words(output) if pytest_stopped(code, cases, output) else None
    print_summary(f"step {slug} on {folder}", cases, stopped_with, why_pytest_stopped(output))
    passed = not stopped_with and suite_passed(code, len(cases), sum(case.outcome == "skipped" for case in cases))
    if code or stopped_with:
        print_details(cases, output, stopped_with)
    if not behaviours(cases):
        print(f"\nworkshop: pytest stopped before running any test of step {slug}: what it said, above, says why.")
    elif stopped_with:
        print(
            f"\nworkshop: pytest stopped before every test of step {slug} had run, so {folder} does not pass it yet. "
            f"Fix what the list above says fails, then check again to run the rest."
        )
    elif not passed:
        print(
            f"\nworkshop: {folder} does not pass step {slug} yet. The list above the details says what fails and why; "
            f"`{command_line('compare', number(slug))}` shows how {folder} differs."
        )
    elif slug == STEPS[-1]:
        print(f"\nworkshop: {folder} passes every test of step {slug}, the last step.")
    else:
        following = command_line("start", number(STEPS[STEPS.index(slug) + 1]))
        print(f"\nworkshop: {folder} passes every test of step {slug}. Compare it with the step, then `{following}`.")
    if passed:
        note_a_passed_step(workbench, slug)
    return 0 if passed else 1


def with_call_never_awaited(case: CaseResult, never_awaited: dict[str, str]) -> CaseResult:
    """A failed test with the call never awaited in it, or in its file, as its reason (see calls_never_awaited)."""
    test_id = case.test_id()
    reason = never_awaited.get(test_id) or never_awaited.get(test_id.partition("::")[0])
    return case._replace(reason=reason) if reason and case.outcome == "failed" else case


def compare_workbench(name: str | None, workbench: Path, tests: bool = False) -> int:
    """Print the diff from workbench/ to a step (default: the workbench's step): the code left to type, first.

    The test files, which the attendee does not type, only with `tests`; otherwise how many differ.
    """
    slug, why = workbench_step(name, workbench, "compare")
    if not name and slug != noted_step(workbench):  # say why, beside the diff
        print(f"workshop: comparing {shown(workbench)}/ with step {slug}, {why}.", file=sys.stderr)
    for path in step_files(workbench):
        try:
            (workbench / path).read_text(encoding="utf-8")
        except UnicodeDecodeError:
            raise WorkshopError(
                f"compare reads text files only, and {shown(workbench / path)} is not UTF-8 text. "
                f"Move it out of {shown(workbench)}/, then compare again."
            ) from None
    diffs = list(file_diffs(workbench, STEPS_DIR / slug, workbench.name, f"steps/{slug}"))
    code = [lines for path, lines in diffs if not is_test_file(path)]
    test_files = [lines for path, lines in diffs if is_test_file(path)]
    shown_diffs = code + test_files if tests else code
    folder = f"{shown(workbench)}/"
    hidden = "" if tests or not test_files else plural(len(test_files), "test file differs", "test files differ")
    see_tests = f"`{command_line('compare', number(slug), '--tests')}` shows them"
    if not shown_diffs:
        same = f"{folder} is the same as steps/{slug}, file for file."
        if hidden:
            same = f"{folder} has the code of steps/{slug}, file for file; {hidden}, which you do not type: "
            same += f"{see_tests}."
        print(f"workshop: {same}")
        return 0
    if isinstance(sys.stdout, io.TextIOWrapper):
        sys.stdout.reconfigure(errors="replace")  # a console that cannot show every character in the steps
    print("".join(line for lines in shown_diffs for line in lines), end="", flush=True)
    legend = f"lines with - are only in {folder}, lines with + only in steps/{slug}"
    print(f"\nworkshop: {legend}.", file=sys.stderr)
    if hidden:
        print(f"workshop: {hidden} as well, which you do not type: {see_tests}.", file=sys.stderr)
    return 0


def run_workbench(workbench: Path, port: int) -> int:
    """Serve workbench/, with a Redis when its code or its step needs one: a note alone must not leave it without."""
    require_loadable(workbench)
    slug = None
    if noted_step(workbench):
        slug, why = step_in_workbench(workbench)
        print(f"workshop: treating {shown(workbench)}/ as step {slug}, {why}")
    # Its code, not its step, says whether it has the demo users yet: a step with a login may be part way typed.
    demo_users = (workbench / DEMO_USERS).is_file()
    return run(workbench, port, uses_redis(workbench) or slug not in STEPS_WITHOUT_REDIS, demo_users)
