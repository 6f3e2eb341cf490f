import re
import socket
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path
from xml.sax.saxutils import escape

import pytest

import tooling.redis_server
import tooling.serve
import tooling.suites
import tooling.venv
import tooling.workbench
import workshop
from tooling.config import (
    DIFFS_DIR,
    STEP_PAIRS,
    STEPS,
    STEPS_DIR,
    STEPS_WITHOUT_REDIS,
    WORKBENCH_STEP,
    WorkshopError,
    resolve_step,
)
from tooling.diffs import is_test_file, step_changes, step_files
from tooling.explain import behaviours, print_summary
from tooling.junit import CaseResult, read_junit
from tooling.reasons import plain_reason
from tooling.redis_server import redis_missing


def files(folder: Path) -> dict[str, bytes]:
    return {path: (folder / path).read_bytes() for path in step_files(folder)}


@pytest.fixture(scope="module")
def steps_before():
    """Every file of steps/ as this module's tests found it, read once for them all."""
    return files(STEPS_DIR)


@pytest.fixture
def workbench(tmp_path, monkeypatch, steps_before):
    """A workbench in a temporary folder, whose checks run with this interpreter; steps/ must stay as it was.

    Its checks leave out the browser tests, which the steps' own suites run: what check reports is the same without
    them, and each would start a browser and a server.
    """
    folder = tmp_path / "workbench"
    monkeypatch.setattr(workshop, "WORKBENCH", folder)
    monkeypatch.setattr(tooling.venv, "ensure_venv", lambda: Path(sys.executable))
    monkeypatch.setenv("PYTEST_ADDOPTS", "--ignore=tests/test_browser.py")
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
    out = capfd.readouterr().out
    assert f"passes every test of step {STEPS[0]}" in out
    assert "The details" not in out


def test_check_says_what_fails_and_why_before_the_details(workbench, capfd):
    workshop.main(["start", "01"])
    # Two templates missing: two reasons, with or without a browser for the browser tests.
    missing_templates = ("chat/templates/chat/room.html", "chat/templates/chat/index.html")
    type_the_step(workbench, STEPS_DIR / STEPS[0], leave_out=missing_templates)
    capfd.readouterr()

    assert workshop.main(["check"]) == 1
    out = capfd.readouterr().out
    summary, details = out.split("\nThe details, ")
    # Only the line that says what runs and pytest's progress come before the summary, however long the details.
    assert len(summary[: summary.index("behaviours work")].splitlines()[:-1]) <= 3, summary
    assert "These fail: Django finds no template chat/room.html: chat/templates/chat/room.html" in summary
    assert "  FAIL  room page shows the room name\n" in summary
    assert "\nE   " not in summary
    assert "E   django.template.exceptions.TemplateDoesNotExist: chat/room.html" in details
    # One traceback for each reason the summary gives.
    headings = [line for line in summary.splitlines() if line.startswith(("This fails: ", "These fail: "))]
    assert len(re.findall(r"^_+ tests/test_\w+\.py::", details, flags=re.MULTILINE)) == len(headings) > 1
    assert (
        out.rstrip().splitlines()[-1].startswith(f"workshop: {workbench.as_posix()}/ does not pass step 01_http yet.")
    )


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


def diff_by_file(diff: str) -> dict[str, str]:
    """The part of a diff from workbench/ to a step for each file, by its path in the step."""
    parts = {}
    for part in re.split(r"^(?=--- .*\n\+\+\+ )", diff, flags=re.MULTILINE)[1:]:
        old, new = (line[4:] for line in part.splitlines()[:2])
        path = new.split("/", 2)[2] if new != "/dev/null" else old.split("/", 1)[1]
        parts[path] = part
    return parts


@pytest.mark.parametrize(("old", "new"), STEP_PAIRS, ids=[new for _, new in STEP_PAIRS])
def test_compare_right_after_start_shows_the_code_of_the_lessons_diff_then_with_tests_the_tests(
    workbench, capsys, old, new
):
    workshop.main(["start", new])
    capsys.readouterr()
    lesson = (DIFFS_DIR / f"{new}.diff").read_text(encoding="utf-8")
    parts = diff_by_file(re.sub(f"^--- steps/{old}/", "--- workbench/", lesson, flags=re.MULTILINE))
    code = "".join(part for path, part in parts.items() if not is_test_file(path))
    tests = "".join(part for path, part in parts.items() if is_test_file(path))
    test_files = sum(is_test_file(path) for path in parts)

    assert workshop.main(["compare"]) == 0
    out, err = capsys.readouterr()
    assert out == code
    see = f"`python3 workshop.py compare {new[:2]} --tests` shows them"
    differ = "1 test file differs" if test_files == 1 else f"{test_files} test files differ"
    assert f"{differ} as well, which you do not type: {see}.\n" in err
    assert workshop.main(["compare", "--tests"]) == 0
    out, err = capsys.readouterr()
    assert out == code + tests
    assert "differ" not in err


def test_compare_once_the_code_is_typed_says_only_the_tests_differ(workbench, capsys):
    workshop.main(["start", "02"])
    type_the_step(workbench, STEPS_DIR / "02_echo_consumer")
    capsys.readouterr()

    assert workshop.main(["compare"]) == 0
    assert capsys.readouterr().out == (
        f"workshop: {workbench.as_posix()}/ has the code of steps/02_echo_consumer, file for file; "
        "7 test files differ, which you do not type: `python3 workshop.py compare 02 --tests` shows them.\n"
    )


def test_start_says_what_it_did_and_what_to_do_next_before_the_files(workbench, capsys):
    workshop.main(["start", "02"])
    out = capsys.readouterr().out
    sentences, _, files = out.partition("\n\n")

    assert "workbench/ now holds steps/01_http: the code step 02_echo_consumer (An echo consumer) starts from." in out
    assert "its chapter, docs/02_echo_consumer.md, shows every line to type" in sentences
    assert "then run `python3 workshop.py check`" in sentences
    assert "  added    chat/consumers.py\n" in files
    assert "  changed  mysite/asgi.py\n" in files
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
    (workbench / WORKBENCH_STEP).unlink()


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

    tooling.workbench.prepare_check(tmp_path)

    assert (tmp_path / "pytest.ini").read_text().splitlines()[1] == (
        "addopts = -p no:cacheprovider --continue-on-collection-errors --tb=short"
    )


def test_behaviours_are_test_names_in_plain_words_failures_first():
    cases = [
        CaseResult("tests.test_echo", "test_message_is_echoed_to_the_sender", "passed", ""),
        CaseResult("tests.test_handshake", "test_foreign_origin_is_refused[http://evil.example]", "failed", "no"),
        CaseResult("tests.test_handshake", "test_foreign_origin_is_refused[http://other.example]", "passed", ""),
        CaseResult("", "tests.test_bad_input", "failed", "there is no module chat.messages yet"),
        CaseResult("tests.test_room_page", "test_room_page_links_back_to_the_index", "skipped", "no browser"),
    ]

    assert behaviours(cases) == [
        ("failed", "foreign origin is refused (fails for http://evil.example)", "no"),
        ("failed", "tests/test_bad_input.py cannot be loaded", "there is no module chat.messages yet"),
        ("skipped", "room page links back to the index", "no browser"),
        ("passed", "message is echoed to the sender", ""),
    ]


def test_the_summary_gives_each_reason_once_above_the_behaviours_that_fail_for_it(capsys):
    cases = [
        CaseResult("tests.test_index_page", "test_index_page_offers_a_form", "failed", 'no element with id="a"'),
        CaseResult("tests.test_room_page", "test_room_page_shows_the_name", "failed", "no template chat/room.html"),
        CaseResult("tests.test_index_page", "test_a_first_visit_shows_no_error", "passed", ""),
        CaseResult("tests.test_room_page", "test_room_page_links_back", "failed", "no template chat/room.html"),
    ]

    print_summary("step 01_http on workbench/", cases)

    assert capsys.readouterr().out == (
        "\nstep 01_http on workbench/: 1 of 4 behaviours work\n"
        'This fails: no element with id="a"\n'
        "  FAIL  index page offers a form\n"
        "These fail: no template chat/room.html\n"
        "  FAIL  room page shows the name\n"
        "  FAIL  room page links back\n"
        "This works:\n"
        "  ok    a first visit shows no error\n"
    )


def report(*lines: str) -> str:
    """A failure as pytest's JUnit report has it with --tb=short: where it happened, then the `E ` lines."""
    return "tests/test_index_page.py:8: in test_index_page_offers_a_focused_room_name_form\n    ...\n" + "".join(
        f"E   {line}\n" if line != "--" else "\nThe above exception was the direct cause of the following:\n"
        for line in lines
    )


REASONS = [
    (
        report("assert 400 == 200", " +  where 400 = <HttpResponseBadRequest status_code=400>.status_code"),
        "the server refused the host name: ALLOWED_HOSTS in mysite/settings.py does not allow it (HTTP 400)",
    ),
    (
        report("django.core.exceptions.DisallowedHost: Invalid HTTP_HOST header: 'chat.example'."),
        "the server refused the host name: ALLOWED_HOSTS in mysite/settings.py does not allow it (HTTP 400)",
    ),
    (
        report("ImportError: cannot import name 'saver' from 'chat' (/tmp/t/workbench/chat/__init__.py)"),
        "there is no module chat.saver yet: write chat/saver.py",
    ),
    (
        report("ModuleNotFoundError: No module named 'chat.routing'"),
        "there is no module chat.routing yet: write chat/routing.py, or chat/routing/__init__.py for a folder of "
        "modules",
    ),
    (
        report("ModuleNotFoundError: No module named 'channels_redis'"),
        "Python finds no module named channels_redis: is it misspelt?",
    ),
    (
        report("ImportError: cannot import name 'PATTERN' from 'chat.room_names' (/tmp/x/chat/room_names.py)"),
        "chat/room_names.py has no PATTERN yet, so it cannot be imported (or the import misspells it)",
    ),
    (
        report("AttributeError: module 'chat.views' has no attribute 'room'"),
        "chat/views.py has no room yet (or it is spelt differently where it is used)",
    ),
    (
        report("django.template.exceptions.TemplateDoesNotExist: chat/index.html"),
        "Django finds no template chat/index.html: chat/templates/chat/index.html, with 'chat' in INSTALLED_APPS",
    ),
    (
        report(
            "django.urls.exceptions.NoReverseMatch: Reverse for 'room' not found. "
            "'room' is not a valid view function or pattern name."
        ),
        "no URL is named 'room': chat/urls.py needs path(..., name=\"room\"), or mysite/urls.py the include that "
        "brings it",
    ),
    (
        report('AssertionError: the page has no element with id="room-form"', "assert None is not None"),
        'the page has no element with id="room-form"',
    ),
    (
        report(
            "KeyError: 'room'",
            "--",
            "django.core.exceptions.ImproperlyConfigured: URL route '<room:room_name>/' uses invalid converter 'room'.",
        ),
        "no path converter named 'room' is registered (register_converter) when the URLs load",
    ),
    (
        report("redis.exceptions.ConnectionError: Error 111 connecting to 127.0.0.1:6379. Connection refused."),
        "Redis is not reachable at 127.0.0.1:6379: start one (`redis-server --port 6379`), "
        "or have mysite/settings.py read REDIS_URL",
    ),
    (
        report("OSError: Multiple exceptions: [Errno 111] Connect call failed ('127.0.0.1', 6391)"),
        "Redis is not reachable at 127.0.0.1:6391: start one (`redis-server --port 6391`), "
        "or have mysite/settings.py read REDIS_URL",
    ),
    (
        report("assert 'letters, digits' in ''", " +  where '' = Element(tag='p').text"),
        "assert 'letters, digits' in ''",
    ),
    (
        report("ValueError: first", "--", "RuntimeError: the one that counts", "with a second line"),
        "RuntimeError: the one that counts",
    ),
    (
        report(
            "Failed: `manage.py migrate --noinput` failed:",
            "Traceback (most recent call last):",
            '  File "manage.py", line 22, in <module>',
            "django.core.exceptions.AppRegistryNotReady: Apps aren't loaded yet.",
        ),
        "AppRegistryNotReady: Apps aren't loaded yet.",
    ),
    (
        report(
            "AssertionError: Locator expected to be visible",
            "Call log:",
            '  - waiting for locator("#chat-log li")',
        ),
        "Locator expected to be visible (the browser waited for #chat-log li)",
    ),
    (
        report("assert " + "x" * 200 + " == 1"),
        "assert " + "x" * 100 + "...",
    ),
    (
        report("assert 'django.contrib.staticfiles' == 'daphne'"),
        "runserver is not daphne's: put 'daphne' first in INSTALLED_APPS in mysite/settings.py",
    ),
    (
        report("ValueError: Django can only handle ASGI/HTTP connections, not websocket."),
        "mysite/asgi.py serves HTTP only: its ProtocolTypeRouter needs a 'websocket' entry with the chat's routes",
    ),
    (
        report("assert 500 == 200", " +  where 500 = <HttpResponseServerError status_code=500>.status_code"),
        "the server failed with an exception (HTTP 500): the details below show which",
    ),
    (  # the same reason whatever the test's port and room, so that it is said once for them all
        report("AssertionError: http://127.0.0.1:49431/chat/room-3b438a43/ has no element #connection-status"),
        "/chat/<room>/ has no element #connection-status",
    ),
]


SITE = "/venv/lib/python3.11/site-packages"
# How a test's communicator waits: the queue's get cancelled, then a TimeoutError; what the test awaited comes between.
COMMUNICATOR_WAITED = (
    f"{SITE}/asgiref/testing.py:109: in receive_output\n    return await self.output_queue.get()\n"
    "E   asyncio.exceptions.CancelledError\n\nThe above exception was the direct cause of the following exception:\n"
)
TIMED_OUT = (
    f"{SITE}/asgiref/testing.py:108: in receive_output\n    async with asyncio.timeout(timeout):\n"
    "/usr/lib/python3.11/asyncio/timeouts.py:115: in __aexit__\n    raise TimeoutError from exc_val\nE   TimeoutError"
)
CONNECTING = (
    "tests/test_echo.py:2: in test_message_is_echoed_to_the_sender\n    socket = await open_socket()\n"
    "tests/sockets.py:15: in handshake\n    accepted, _ = await communicator.connect()\n"
    f"{SITE}/channels/testing/websocket.py:41: in connect\n    response = await self.receive_output(timeout)\n"
)
# Reasons that the `E ` lines alone do not give: the lines of code around them say what the test was doing.
REASONS_IN_CONTEXT = [
    (  # a consumer whose connect() does not await accept() (or, synchronous, never calls it)
        COMMUNICATOR_WAITED + CONNECTING + TIMED_OUT,
        "the handshake timed out: is `accept()` awaited (called, in a synchronous consumer)?",
    ),
    (  # the same consumer, served by daphne, which gives up on the handshake
        report(
            "EOFError: connection closed while reading HTTP status line",
            "--",
            "websockets.exceptions.InvalidMessage: did not receive a valid HTTP response",
        ),
        "the server closed the socket without answering its handshake: is `accept()` awaited?",
    ),
    (  # the same consumer, as the page sees it
        report(
            "AssertionError: Locator expected to have attribute 'open'",
            "Actual value: connecting ",
            "Call log:",
            '  - Expect "to_have_attribute" locator("#connection-status") with timeout 5000ms',
            '  - waiting for locator("#connection-status")',
        ),
        "the page's socket stayed connecting: the server never answered its handshake (is `accept()` awaited?)",
    ),
    (  # or, once daphne gave up on the handshake
        report(
            "AssertionError: Locator expected to have attribute 'open'",
            "Actual value: closed ",
            "Call log:",
            '  - waiting for locator("#connection-status")',
            '    13 × locator resolved to <p role="status" data-state="connecting">Connecting…</p>',
            '       - unexpected value "connecting"',
            '    - locator resolved to <p role="status" data-state="closed" id="connection-status">Disconnected</p>',
            '    - unexpected value "closed"',
        ),
        "the page's socket closed before it opened: its handshake was refused or dropped (is `accept()` awaited?)",
    ),
    (  # a consumer that reads scope["user"] with no AuthMiddlewareStack to put it there: it fails as it connects
        COMMUNICATOR_WAITED
        + TIMED_OUT
        + "\n\nDuring handling of the above exception, another exception occurred:\n"
        + CONNECTING
        + 'chat/consumers.py:36: in connect\n    self.user = self.scope["user"]\nE   KeyError: \'user\'',
        'the consumer finds no scope["user"]: mysite/asgi.py must wrap the websocket routes in AuthMiddlewareStack',
    ),
    (
        "tests/test_handshake.py:19: in test_handshake_without_a_login_is_refused\n"
        "    assert not accepted\nE   assert not True",
        'a socket without a login was accepted: connect() must close() it unless scope["user"] is authenticated',
    ),
    (
        "tests/test_handshake.py:24: in test_foreign_origin_is_refused\n    assert not accepted\nE   assert not True",
        "the handshake was accepted, and should have been refused",
    ),
    (
        report("websockets.exceptions.InvalidStatus: server rejected WebSocket connection: HTTP 500"),
        "the server failed the handshake with an exception (HTTP 500): `run workbench` shows it when a page connects",
    ),
    (
        COMMUNICATOR_WAITED
        + "tests/test_echo.py:6: in test_message_is_echoed_to_the_sender\n"
        + '    assert await socket.receive_json_from() == {"message": "hello"}\n'
        + f"{SITE}/channels/testing/websocket.py:104: in receive_json_from\n"
        + "    payload = await self.receive_from(timeout)\n"
        + TIMED_OUT,
        "`socket` got no message within 1 second",
    ),
    (
        COMMUNICATOR_WAITED
        + "tests/test_idle_socket.py:25: in test_idle_socket_still_receives_the_next_message\n"
        + '    assert await idle.receive_json_from(timeout=5) == {"message": "still there?"}\n'
        + TIMED_OUT,
        "`idle` got no message within 5 seconds",
    ),
    (  # a socket of a real daphne, from the websockets library
        f"{SITE}/websockets/asyncio/messages.py:54: in get\n    await self.get_waiter\n"
        "E   asyncio.exceptions.CancelledError\n\n"
        "The above exception was the direct cause of the following exception:\n"
        "tests/test_redis_outage.py:44: in test_new_sockets_chat_again_after_redis_restarts\n"
        '    assert json.loads(await asyncio.wait_for(alice.recv(), 5))["message"] == "before the restart"\n'
        "/usr/lib/python3.11/asyncio/tasks.py:502: in wait_for\n"
        "    raise exceptions.TimeoutError() from exc\nE   TimeoutError",
        "`alice` got no message within 5 seconds",
    ),
    (  # tests/servers.py's eventually, waiting for what Redis says
        "tests/test_group_broadcast.py:40: in test_room_is_left_in_redis_when_its_last_socket_leaves\n"
        "    await eventually(subscribed(room_name, processes=0))\n"
        "tests/servers.py:107: in eventually\n"
        '    assert time.monotonic() < deadline, f"still false after {seconds} seconds"\n'
        "E   AssertionError: still false after 5 seconds\nE   assert 1825.312219965 < 1825.299885834",
        "the room still had a listener in Redis after 5 seconds: does disconnect() leave the group?",
    ),
    (
        "tests/test_frame_size.py:30: in test_an_oversized_frame_closes_the_socket\n"
        "    await eventually(lambda: room_subscriptions(settings.REDIS_URL, room_name) == 0, seconds=10)\n"
        "tests/servers.py:107: in eventually\n"
        '    assert time.monotonic() < deadline, f"still false after {seconds} seconds"\n'
        "E   AssertionError: still false after 10 seconds",
        "the room still had a listener in Redis after 10 seconds: does disconnect() leave the group?",
    ),
    (
        "tests/test_dead_peer.py:13: in test_a_dead_peer_is_noticed\n"
        "    await eventually(lambda: room_subscriptions(settings.REDIS_URL, room_name) == 1)\n"
        "tests/servers.py:107: in eventually\n"
        '    assert time.monotonic() < deadline, f"still false after {seconds} seconds"\n'
        "E   AssertionError: still false after 5 seconds",
        "Redis did not count 1 process listening to the room within 5 seconds: does connect() join the group?",
    ),
    (
        "tests/test_across_processes.py:24: in test_both_processes_listen\n"
        "    await eventually(lambda: room_subscriptions(settings.REDIS_URL, room_name) == 2)\n"
        "tests/servers.py:107: in eventually\n"
        '    assert time.monotonic() < deadline, f"still false after {seconds} seconds"\n'
        "E   AssertionError: still false after 5 seconds",
        "Redis did not count 2 processes listening to the room within 5 seconds: does connect() join the group?",
    ),
    (  # anything else tests/servers.py's eventually waits for, by the test's own words
        "tests/test_x.py:9: in test_x\n    await eventually(lambda: len(received) == 3)\n"
        "tests/servers.py:107: in eventually\n"
        '    assert time.monotonic() < deadline, f"still false after {seconds} seconds"\n'
        "E   AssertionError: still false after 5 seconds",
        "len(received) == 3 was still false after 5 seconds",
    ),
]


@pytest.mark.parametrize(
    ("failure", "reason"), REASONS + REASONS_IN_CONTEXT, ids=[reason[:40] for _, reason in REASONS + REASONS_IN_CONTEXT]
)
def test_a_failure_is_explained_in_one_line_from_its_report(failure, reason):
    assert plain_reason(failure) == reason


def test_a_failure_read_from_the_junit_report_carries_its_reason_and_its_traceback():
    failure = report("django.template.exceptions.TemplateDoesNotExist: chat/room.html")
    case = ET.fromstring(
        f'<testcase classname="tests.test_room_page" name="test_room_page_shows_the_room_name[lobby]" time="1.25">'
        f'<failure message="TemplateDoesNotExist">{failure}</failure></testcase>'
    )

    assert CaseResult.from_junit(case) == (
        "tests.test_room_page",
        "test_room_page_shows_the_room_name[lobby]",
        "failed",
        "Django finds no template chat/room.html: chat/templates/chat/room.html, with 'chat' in INSTALLED_APPS",
        failure,
        1.25,
        "call",
    )


@pytest.fixture
def no_redis(monkeypatch):
    """A machine without Redis: no REDIS_URL, and no redis-server to start."""
    monkeypatch.delenv("REDIS_URL", raising=False)

    def none_found(python):
        raise WorkshopError(redis_missing())

    monkeypatch.setattr(tooling.redis_server, "find_redis_server", none_found)


def pretend_to_run(monkeypatch) -> list[dict[str, str]]:
    """Have pytest and the server succeed without running; the environment each would have had, in order."""
    environments = []
    passed = [CaseResult("tests.test_echo", "test_message_is_echoed_to_the_sender", "passed", "")]
    counts = {"tests": 1, "failures": 0, "errors": 0, "skipped": 0}

    def check_run(python, folder, env):
        environments.append(env)
        return 0, passed, ""

    def suite_run(python, folder, env, options):
        environments.append(env)
        return 0, counts, 0.0, passed

    def server_run(command, **options):
        environments.append(options.get("env", {}))
        return subprocess.CompletedProcess(command, 0)

    def run_to_the_end(command, **options):
        return server_run(command, **options).returncode

    monkeypatch.setattr(tooling.workbench, "run_pytest_quietly", check_run)
    monkeypatch.setattr(tooling.suites, "run_pytest", suite_run)
    monkeypatch.setattr(subprocess, "run", server_run)
    monkeypatch.setattr(tooling.serve, "run_to_the_end", run_to_the_end)
    return environments


@pytest.mark.parametrize("command", ["check", "run workbench", "test STEP"])
@pytest.mark.parametrize("step", ["01", "02", "03"])
def test_only_the_steps_that_use_redis_need_it(workbench, no_redis, monkeypatch, capsys, command, step):
    workshop.main(["reset", step])
    environments = pretend_to_run(monkeypatch)
    capsys.readouterr()

    code = workshop.main(command.replace("STEP", step).split())

    if resolve_step(step) in STEPS_WITHOUT_REDIS:
        assert code == 0, capsys.readouterr().err
        assert environments and all("REDIS_URL" not in env for env in environments)
    else:
        assert code == 2
        assert "steps 03 onwards need a Redis server" in capsys.readouterr().err


# What pytest's JUnit report holds, as --junitxml writes it, for check's tests that pretend to run pytest.
def junit(*testcases: str) -> str:
    suite = f'<testsuite name="pytest">{"".join(testcases)}</testsuite>'
    return f'<?xml version="1.0" encoding="utf-8"?><testsuites>{suite}</testsuites>'


def junit_case(module: str, name: str, *children: str) -> str:
    return f'<testcase classname="{module}" name="{name}" time="0.1">{"".join(children)}</testcase>'


def failed(message: str, *lines: str) -> str:
    """A test's call failing: its report, then the exception in `E ` lines."""
    return f'<failure message="{escape(message)}">{escape(report(*lines))}</failure>'


def errored(when: str, message: str, *lines: str) -> str:
    """A failure in a test's set-up or tear-down (its fixtures), which JUnit calls an error."""
    return f'<error message="failed on {when} with &quot;{escape(message)}&quot;">{escape(report(*lines))}</error>'


def pretend_pytest_said(monkeypatch, tmp_path: Path, code: int, junit_report: str | None, output: str = "") -> None:
    """Have check's pytest end with this exit code, JUnit report (None: it wrote none) and output after its progress."""
    path = tmp_path / "junit.xml"
    if junit_report is not None:
        path.write_text(junit_report, encoding="utf-8")

    def check_run(python, folder, env):
        return code, read_junit(path)[1], output

    monkeypatch.setattr(tooling.workbench, "run_pytest_quietly", check_run)


FIELD_ERROR = "django.core.exceptions.FieldError: Cannot resolve keyword 'number' into field."
# What check saw when pytest failed inside, formatting a traceback: a test failing and failing again as its sockets
# closed, a testcase with no name, then pytest's own, `internal`. Its output then ended with INTERNALERROR lines.
STOPPED_INSIDE = junit(
    junit_case("tests.test_index_page", "test_a_first_visit_shows_no_error"),
    junit_case("tests.test_echo", "test_message_is_echoed_to_the_sender", failed("FieldError", FIELD_ERROR)),
    junit_case(
        "tests.test_echo", "test_message_is_echoed_to_the_sender", errored("teardown", "FieldError", FIELD_ERROR)
    ),
    '<testcase time="0.0" />',
    '<testcase classname="pytest" name="internal" time="0.0"><error message="internal error">Traceback '
    "(most recent call last):\nSystemError: AST constructor recursion depth mismatch</error></testcase>",
)
INTERNAL_ERROR_OUTPUT = (
    'INTERNALERROR>   File "/venv/lib/python3.11/site-packages/_pytest/_code/source.py", line 227, in parse\n'
    "INTERNALERROR>     return compile(source, filename, mode, flags,\n"
    "INTERNALERROR>            ^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^\n"
    "INTERNALERROR> SystemError: AST constructor recursion depth mismatch (before=129, after=181)\n"
    "Traceback (most recent call last):\n"
    '  File "/venv/lib/python3.11/site-packages/asgiref/testing.py", line 94, in send_input\n'
    f"{FIELD_ERROR}\n"
)


@pytest.mark.parametrize("code", [1, 3], ids=["crashing-on-its-way-out", "exiting-with-its-internal-error-code"])
def test_check_says_plainly_when_pytest_itself_stopped_and_counts_nothing(
    workbench, monkeypatch, tmp_path, capsys, code
):
    workshop.main(["reset", "01"])
    pretend_pytest_said(monkeypatch, tmp_path, code, STOPPED_INSIDE, INTERNAL_ERROR_OUTPUT)
    capsys.readouterr()

    assert workshop.main(["check"]) == 1
    out = capsys.readouterr().out
    summary = out.partition("\nThe details")[0]
    assert "pytest itself stopped" in summary
    assert "SystemError: AST constructor recursion depth mismatch (before=129, after=181)" in summary
    assert "That is a known bug of some Python 3.11 and 3.12 releases (CPython issue 106905), not of your" in summary
    assert [line for line in summary.splitlines() if line.startswith("  FAIL  ")] == [
        "  FAIL  message is echoed to the sender"
    ]
    assert "internal" not in summary and "cannot be loaded" not in summary
    # What ran is only part of the step: no count of what works, nor of the tests that fail.
    assert not re.search(r"\d+ of \d+ behaviours|\d+ more tests? fails?", out), out


def test_check_shows_a_failed_clean_up_after_the_test_it_followed_not_as_the_next_tests_reason(
    workbench, monkeypatch, tmp_path, capsys
):
    """A fixture that fails as it is torn down can leave pytest unable to set the next test up, in another file."""
    workshop.main(["reset", "01"])
    not_torn_down = "AssertionError: previous item was not torn down properly"
    pretend_pytest_said(
        monkeypatch,
        tmp_path,
        1,
        junit(
            junit_case("tests.test_echo", "test_message_is_echoed_to_the_sender"),
            junit_case(
                "tests.test_echo", "test_unicode_comes_back", errored("teardown", "CancelledError", "CancelledError")
            ),
            junit_case(
                "tests.test_room_page", "test_room_page_shows_the_name", errored("setup", not_torn_down, not_torn_down)
            ),
            junit_case("tests.test_room_page", "test_room_page_links_back"),
        ),
    )
    capsys.readouterr()

    assert workshop.main(["check"]) == 1
    summary = capsys.readouterr().out.partition("\nThe details")[0]
    assert "not torn down" not in summary
    assert "  ok    unicode comes back\n" in summary
    assert 'This fails: CancelledError\n  FAIL  the clean-up after "unicode comes back"\n' in summary
    assert (
        'This is skipped: not run, because the clean-up after "unicode comes back" failed first\n'
        "  skip  room page shows the name\n"
    ) in summary
    assert "3 of 4 behaviours work" in summary


@pytest.mark.parametrize(("failing", "more"), [(2, "1 more test fails"), (3, "2 more tests fail")])
def test_check_counts_each_failing_test_once_however_often_junit_lists_it(
    workbench, monkeypatch, tmp_path, capsys, failing, more
):
    workshop.main(["reset", "01"])
    names = [f"test_message_{number}_is_echoed" for number in range(failing)]
    twice = [
        junit_case("tests.test_echo", name, element)
        for name in names
        for element in (failed("FieldError", FIELD_ERROR), errored("teardown", "FieldError", FIELD_ERROR))
    ]
    pretend_pytest_said(monkeypatch, tmp_path, 1, junit(*twice))
    capsys.readouterr()

    assert workshop.main(["check"]) == 1
    out = capsys.readouterr().out
    assert f"pytest's report of one failing test for each reason; {more} for the same reason:" in out


@pytest.mark.parametrize("step", STEPS[1:])
def test_start_counts_the_files_to_type_in_plain_words(workbench, capsys, step):
    workshop.main(["start", step])

    out = capsys.readouterr().out
    assert not re.search(r"\b1 (test )?files\b", out), out


# The last step that needs no Redis and the first that does: the step an attendee types after it.
LAST_WITHOUT_REDIS = [slug for slug in STEPS if slug in STEPS_WITHOUT_REDIS][-1]
FIRST_WITH_REDIS = next(slug for slug in STEPS if slug not in STEPS_WITHOUT_REDIS)


def test_a_passing_check_of_a_later_step_moves_the_workbench_to_it(workbench, monkeypatch, capsys):
    workshop.main(["reset", STEPS[1]])
    type_the_step(workbench, STEPS_DIR / STEPS[2])
    monkeypatch.setenv("REDIS_URL", "redis://127.0.0.1:6379/0")  # no server is started for it: pytest only pretends
    pretend_to_run(monkeypatch)
    capsys.readouterr()

    assert workshop.main(["check", STEPS[2][:2]]) == 0
    assert f"now notes step {STEPS[2]}: check and compare use it" in capsys.readouterr().out
    assert workshop.main(["compare"]) == 0
    assert f"has the code of steps/{STEPS[2]}, file for file" in capsys.readouterr().out


def test_a_passing_check_of_an_earlier_step_leaves_the_step_being_typed(workbench, monkeypatch, capsys):
    workshop.main(["start", STEPS[2]])
    monkeypatch.setenv("REDIS_URL", "redis://127.0.0.1:6379/0")
    pretend_to_run(monkeypatch)

    assert workshop.main(["check", STEPS[1][:2]]) == 0
    assert "now notes" not in capsys.readouterr().out
    assert tooling.workbench.noted_step(workbench) == STEPS[2]


def test_run_workbench_starts_redis_for_code_that_uses_it_whatever_step_it_notes(
    workbench, no_redis, monkeypatch, capsys
):
    workshop.main(["reset", LAST_WITHOUT_REDIS])
    type_the_step(workbench, STEPS_DIR / FIRST_WITH_REDIS)
    pretend_to_run(monkeypatch)
    capsys.readouterr()

    assert workshop.main(["run", "workbench"]) == 2
    assert "need a Redis server" in capsys.readouterr().err


# A step that adds a file of code to the one before it: typing it shows in workbench/ before any check passes.
ADDS_A_FILE = [
    (old, new, added)
    for old, new in STEP_PAIRS
    for added in [[path for path in step_changes(STEPS_DIR / old, STEPS_DIR / new)["added"] if not is_test_file(path)]]
    if added
][-1]


def test_a_workbench_typed_past_its_step_is_checked_and_named_as_the_step_it_holds_files_of(
    workbench, monkeypatch, capsys
):
    old, new, added = ADDS_A_FILE
    workshop.main(["reset", old])
    type_the_step(workbench, STEPS_DIR / new)
    monkeypatch.setenv("REDIS_URL", "redis://127.0.0.1:6379/0")
    pretend_to_run(monkeypatch)
    capsys.readouterr()

    assert workshop.main(["compare"]) == 0
    assert f"with step {new}, since it holds {added[0]}, which that step adds" in capsys.readouterr().err
    assert workshop.main(["check"]) == 0
    out = capsys.readouterr().out
    assert f"running the tests of step {new} on " in out
    assert (
        f"since it holds {added[0]}, which that step adds (it notes step {old}, the step it was last reset to)" in out
    )
    assert workshop.main(["run", "workbench"]) == 0
    out = capsys.readouterr().out
    assert " is at step " not in out
    assert f"treating {workbench.as_posix()}/ as step {new}, the latest step whose tests it passed" in out


def test_check_says_what_pytest_said_when_it_stopped_before_any_test(workbench, monkeypatch, tmp_path, capsys):
    workshop.main(["reset", "01"])
    usage_error = "ERROR: usage: python -m pytest [options]\npython -m pytest: error: unrecognized arguments: -n\n"
    pretend_pytest_said(monkeypatch, tmp_path, 4, None, usage_error)
    capsys.readouterr()

    assert workshop.main(["check"]) == 1
    out = capsys.readouterr().out
    assert "no test ran, because pytest stopped before running any" in out
    assert "unrecognized arguments: -n" in out
    assert "list above" not in out


# What pytest says when loading the project fails as pytest-django sets Django up: its plugins' traceback, then the
# exception, without `E ` in front.
STOPPED_LOADING = """\
Traceback (most recent call last):
  File ".venv/lib/python3.11/site-packages/_pytest/config/__init__.py", line 1234, in _preparse
    self.hook.pytest_load_initial_conftests(
  File "workbench/chat/signals.py", line 10, in <module>
    from .consumers import session_group_name, user_group_name
ImportError: cannot import name 'user_group_name' from 'chat.consumers' (/tmp/t/workbench/chat/consumers.py)
"""


def test_check_says_in_a_line_where_pytest_stopped_before_any_test(workbench, monkeypatch, tmp_path, capsys):
    workshop.main(["reset", "01"])
    pretend_pytest_said(monkeypatch, tmp_path, 1, None, STOPPED_LOADING)
    capsys.readouterr()

    assert workshop.main(["check"]) == 1
    out = capsys.readouterr().out
    assert (
        "no test ran, because pytest stopped before running any (its message is below).\n"
        "It stopped at: chat/consumers.py has no user_group_name yet, so it cannot be imported"
    ) in out


# What pytest says after the tests when a consumer calls self.send(...) without await: the tests the warning came up
# in, or for many of them their file, then the warning, pointing at the call.
NEVER_AWAITED_OUTPUT = """
=============================== warnings summary ===============================
tests/test_group_broadcast.py::test_message_reaches_every_socket_in_the_room_exactly_once
tests/test_echo.py: 2 warnings
  /tmp/t/workbench/chat/consumers.py:34: RuntimeWarning: coroutine 'AsyncWebsocketConsumer.send' was never awaited
    self.send(text_data=json.dumps({"message": event["message"]}))
  Enable tracemalloc to get traceback where the object was allocated.
  See https://docs.pytest.org/en/stable/how-to/capture-warnings.html#resource-warnings for more info.

-- Docs: https://docs.pytest.org/en/stable/how-to/capture-warnings.html
"""


def test_check_names_a_call_that_is_not_awaited_as_the_reason_its_tests_fail(workbench, monkeypatch, tmp_path, capsys):
    workshop.main(["reset", "04"])
    timed_out = failed("TimeoutError", "TimeoutError")
    report = junit(
        junit_case(
            "tests.test_group_broadcast", "test_message_reaches_every_socket_in_the_room_exactly_once", timed_out
        ),
        junit_case("tests.test_group_broadcast", "test_message_does_not_leak_to_other_rooms", timed_out),
        junit_case("tests.test_echo", "test_message_is_echoed_to_the_sender", timed_out),
    )
    pretend_pytest_said(monkeypatch, tmp_path, 1, report, NEVER_AWAITED_OUTPUT)
    capsys.readouterr()

    assert workshop.main(["check"]) == 1
    out = capsys.readouterr().out
    assert (
        'These fail: `self.send(text_data=json.dumps({"message": event["message"]}))` (chat/consumers.py:34) is not '
        "awaited: without `await` it never runs\n"
        "  FAIL  message reaches every socket in the room exactly once\n"
        "  FAIL  message is echoed to the sender\n"
    ) in out
    assert "This fails: TimeoutError\n  FAIL  message does not leak to other rooms" in out, "a test without the warning"


def test_check_shows_the_failed_clean_ups_of_a_parametrized_test_once_with_their_count(
    workbench, monkeypatch, tmp_path, capsys
):
    workshop.main(["reset", "01"])
    cases = [
        junit_case("tests.test_bad_input", f"test_bad_frame_gets_an_error[{frame}]", errored("teardown", "KeyError"))
        for frame in ("binary", "empty", "not json")
    ]
    pretend_pytest_said(monkeypatch, tmp_path, 1, junit(*cases))
    capsys.readouterr()

    assert workshop.main(["check"]) == 1
    out = capsys.readouterr().out
    assert out.count('the clean-up after "bad frame gets an error"') == 1
    assert '  FAIL  the clean-up after "bad frame gets an error" (3 cases)\n' in out


def test_run_says_when_its_port_is_taken_instead_of_serving_nothing(workbench, capsys):
    with socket.socket() as other_server:
        other_server.bind(("127.0.0.1", 0))
        other_server.listen()
        port = other_server.getsockname()[1]

        assert workshop.main(["run", "01", "--port", str(port)]) == 2

    err = capsys.readouterr().err
    assert f"port {port} is in use" in err
    assert f"--port {port + 1}" in err
