"""Why a test failed, in one line an attendee can act on, from pytest's report of it."""

from __future__ import annotations

import re

from tooling.words import plural, shorten

# What an attendee meets most while typing a step, each said as what to do about it. The patterns search the `E `
# lines of a test's report; the first that matches explains it, else the assertion or error line itself does.
REASONS: list[tuple[re.Pattern[str], str]] = [
    (re.compile(r'the page has no element with id="[^"]*"'), "{0}"),
    (
        re.compile(r"Invalid HTTP_HOST header|DisallowedHost|\bassert 400 == 200\b"),
        "the server refused the host name: ALLOWED_HOSTS in mysite/settings.py does not allow it (HTTP 400)",
    ),
    (
        re.compile(r"assert '[\w.]+' == 'daphne'"),
        "runserver is not daphne's: put 'daphne' first in INSTALLED_APPS in mysite/settings.py",
    ),
    (
        re.compile(r"Django can only handle ASGI/HTTP connections, not websocket"),
        "mysite/asgi.py serves HTTP only: its ProtocolTypeRouter needs a 'websocket' entry with the chat's routes",
    ),
    (
        re.compile(r"\bassert 500 == 200\b"),
        "the server failed with an exception (HTTP 500): the details below show which",
    ),
    (
        re.compile(r"\bassert 404 == 200\b"),
        "no page at that address (HTTP 404): chat/urls.py has no path for it, or mysite/urls.py no include",
    ),
    (
        re.compile(r"No module named '(?P<module>(?:chat|mysite)(?:\.\w+)*)'"),
        "there is no module {module} yet: write {path}.py, or {path}/__init__.py for a folder of modules",
    ),
    (re.compile(r"No module named '(?P<module>[\w.]+)'"), "Python finds no module named {module}: is it misspelt?"),
    (  # from chat import saver: a module of the package that is not there yet
        re.compile(
            r"cannot import name '(?P<name>\w+)' from '(?P<module>(?:chat|mysite)(?:\.\w+)*)' \([^)]*__init__\.py\)"
        ),
        "there is no module {module}.{name} yet: write {path}/{name}.py",
    ),
    (
        re.compile(r"cannot import name '(?P<name>\w+)' from '(?P<module>[\w.]+)'"),
        "{file} has no {name} yet, so it cannot be imported (or the import misspells it)",
    ),
    (
        re.compile(r"module '(?P<module>[\w.]+)' has no attribute '(?P<name>\w+)'"),
        "{file} has no {name} yet (or it is spelt differently where it is used)",
    ),
    (
        re.compile(r"URL route '(?P<route>[^']*)' uses invalid converter '(?P<converter>\w+)'"),
        "no path converter named '{converter}' is registered (register_converter) when the URLs load",
    ),
    (
        re.compile(r"TemplateDoesNotExist: (?P<template>\S+)"),
        "Django finds no template {template}: chat/templates/{template}, with 'chat' in INSTALLED_APPS",
    ),
    (
        re.compile(r"Reverse for '(?P<name>[^']+)' not found\. '[^']+' is not a valid view function or pattern name"),
        "no URL is named '{name}': chat/urls.py needs path(..., name=\"{name}\"), or mysite/urls.py the include that "
        "brings it",
    ),
    (
        re.compile(r"Reverse for '(?P<name>[^']+)' with "),
        "the URL named '{name}' does not take these arguments: compare its path in chat/urls.py",
    ),
    (
        re.compile(
            r"Error \d+ connecting to (?P<address>[\w.-]+:\d+)"
            r"|Connect call failed \('(?P<host>[\d.:a-f]+)', (?P<port>\d+)"
        ),
        "Redis is not reachable at {where}: start one (`redis-server --port {port}`), "
        "or have mysite/settings.py read REDIS_URL",
    ),
    (  # a consumer that never accepts, served by daphne, which gives up on the handshake
        re.compile(r"InvalidMessage: did not receive a valid HTTP response"),
        "the server closed the socket without answering its handshake: is `accept()` awaited?",
    ),
    (  # the same consumer, as the page sees it
        re.compile(r"Locator expected to have attribute 'open'\nActual value: connecting\b"),
        "the page's socket stayed connecting: the server never answered its handshake (is `accept()` awaited?)",
    ),
    (  # or, once daphne gave up on the handshake
        re.compile(
            r"Locator expected to have attribute 'open'\nActual value: closed\b[\s\S]*unexpected value \"connecting\""
        ),
        "the page's socket closed before it opened: its handshake was refused or dropped (is `accept()` awaited?)",
    ),
    (
        re.compile(r"server rejected WebSocket connection: HTTP 500"),
        "the server failed the handshake with an exception (HTTP 500): `run workbench` shows it when a page connects",
    ),
    (
        re.compile(r"KeyError: 'user'"),
        'the consumer finds no scope["user"]: mysite/asgi.py must wrap the websocket routes in AuthMiddlewareStack',
    ),
    (  # what a browser test saw: Django's error page, as Playwright describes the page
        re.compile(r'heading "(?P<error>\w+) at (?P<path>/[^"]*)"[\s\S]*?Exception Value: (?P<value>[^"\n]*)'),
        "the browser got Django's error page for {path}: {error}: {value}",
    ),
]
TIMED_OUT = r"^E   (?:asyncio\.exceptions\.)?TimeoutError$"
STILL_FALSE = r"\n[\s\S]*still false after (?P<seconds>[\d.]+) seconds"  # what eventually says, lines later
# Reasons the `E ` lines alone do not give. These patterns search the report of the last exception, with the lines
# of code that led to it, which say what the test was doing: which socket waited, what `eventually` waited for.
REASONS_IN_CONTEXT: list[tuple[re.Pattern[str], str]] = [
    (  # what the test's communicator says when connect() does not await accept() (a synchronous one: never calls it)
        re.compile(r"/channels/testing/websocket\.py:\d+: in connect\n[\s\S]*" + TIMED_OUT, re.MULTILINE),
        "the handshake timed out: is `accept()` awaited (called, in a synchronous consumer)?",
    ),
    (
        re.compile(r"\bin test_\w*without_a_login\w*\n +assert not accepted\nE   assert not True"),
        'a socket without a login was accepted: connect() must close() it unless scope["user"] is authenticated',
    ),
    (
        re.compile(r"\n +assert not accepted\nE   assert not True"),
        "the handshake was accepted, and should have been refused",
    ),
    (
        re.compile(
            r"\b(?!self\.)(?P<socket>\w+)\.receive_(?:json_)?from\((?:timeout=)?(?P<seconds>[\d.]*)\)[\s\S]*"
            + TIMED_OUT,
            re.MULTILINE,
        ),
        "`{socket}` got no message within {waited}",
    ),
    (
        re.compile(r"wait_for\((?P<socket>\w+)\.recv\(\), (?P<seconds>[\d.]+)\)[\s\S]*" + TIMED_OUT, re.MULTILINE),
        "`{socket}` got no message within {waited}",
    ),
    (  # tests/servers.py's eventually, waiting for Redis to count the processes that listen to a room
        re.compile(
            r"await eventually\((?:lambda: room_subscriptions\([^)]*\) == 0\b|subscribed\([^)]*=0\)).*" + STILL_FALSE
        ),
        "the room still had a listener in Redis after {waited}: does disconnect() leave the group?",
    ),
    (
        re.compile(
            r"await eventually\((?:lambda: room_subscriptions\([^)]*\) == |subscribed\([^)]*=)(?P<count>\d+).*"
            + STILL_FALSE
        ),
        "Redis did not count {processes} listening to the room within {waited}: does connect() join the group?",
    ),
    (
        re.compile(r"await eventually\((?:lambda: )?(?P<condition>.+?)(?:, seconds=[\d.]+)?\)" + STILL_FALSE),
        "{condition} was still false after {waited}",
    ),
]
# What separates a chained exception's report from the report of the exception that caused it.
CHAINED = re.compile(
    r"^(?:The above exception was the direct cause of the following exception:"
    r"|During handling of the above exception, another exception occurred:)$",
    re.MULTILINE,
)
EXCEPTION_LINE = re.compile(r"^(?:[a-z_]\w*\.)*[A-Z]\w*: ")  # KeyError: 'room', django.core.exceptions.X: ...
MODULE_PATH = re.compile(r"\b(?:[a-z_]\w*\.)+(?=[A-Z]\w*: )")  # django.template.exceptions. in front of a name


# What differs from one browser test to the next: the server's port and the test's own room.
SERVED_AT = re.compile(r"http://127\.0\.0\.1:\d+")
ROOM_OF_A_TEST = re.compile(r"\broom-[0-9a-f]{8}\b")


def reason_fields(found: re.Match[str]) -> dict[str, str]:
    """The parts of a report a pattern found, and the words an explanation makes of them."""
    fields = {key: value for key, value in found.groupdict().items() if value}
    if "module" in fields:
        fields["path"] = fields["module"].replace(".", "/")
        ours = fields["module"].partition(".")[0] in ("chat", "mysite")
        fields["file"] = f"{fields['path']}.py" if ours else fields["module"]
    if "address" in fields or "host" in fields:
        fields["where"] = fields.get("address") or f"{fields['host']}:{fields['port']}"
        fields["port"] = fields["where"].rpartition(":")[2]
    if "seconds" in found.groupdict():
        seconds = fields.get("seconds", "1")  # receive_json_from() waits one second unless told otherwise
        fields["waited"] = f"{seconds} {'second' if seconds == '1' else 'seconds'}"
    if "count" in fields:
        fields["processes"] = plural(int(fields["count"]), "process", "processes")
    return fields


def plain_reason(report: str, width: int = 110) -> str:
    """Why a test failed, in one line, from pytest's report of it: its `E ` lines, and the code around the last."""
    blocks: list[list[str]] = [[]]  # the `E ` lines of each exception; a chained one comes after its cause
    for line in report.splitlines():
        if line.startswith("E "):
            blocks[-1].append(line[1:].strip())
        elif blocks[-1]:
            blocks.append([])
    text = "\n".join(line for block in blocks for line in block)
    last_exception = CHAINED.split(report)[-1]
    for searched, reasons in [(last_exception, REASONS_IN_CONTEXT), (text, REASONS)]:
        for pattern, explanation in reasons:
            found = pattern.search(searched)
            if found:
                return shorten(explanation.format(found[0], **reason_fields(found)), width + 40)
    # The line that failed: the assertion, or the first line of the last exception's message; in a message that
    # holds a traceback (a command that failed), that traceback's last exception.
    last = next((block for block in reversed(blocks) if block), [""])
    line = last[0]
    if "Traceback (most recent call last):" in last:
        line = next((line for line in reversed(last) if EXCEPTION_LINE.match(line)), line)
    line = MODULE_PATH.sub("", line).removeprefix("AssertionError: ").removeprefix("Failed: ")
    selector = re.search(r'waiting for (?:locator|get_by_\w+)\("(?P<selector>[^"]+)"\)', text)
    if selector and selector["selector"] not in line:
        line += f" (the browser waited for {selector['selector']})"
    return shorten(SERVED_AT.sub("", ROOM_OF_A_TEST.sub("<room>", line)), width)


# A warning in the summary pytest prints after the tests: the tests it came up in, each on a line of its own, then
# the warning indented, with the line of code it points at below it.
NEVER_AWAITED = re.compile(
    r"^ +(?P<file>\S+?):(?P<line>\d+): RuntimeWarning: coroutine '(?P<coroutine>[\w.]+)' was never awaited\n"
    r" +(?P<code>.+)$",
    re.MULTILINE,
)


def calls_never_awaited(output: str, project: str) -> dict[str, str]:
    """By test id or test file: the reason for a failure in which pytest warned that a coroutine was never awaited.

    Python only warns about such a call (`self.send(...)` without `await`), which then does nothing; the test fails
    later for want of what it should have done, for a reason that does not name the call. pytest lists the tests the
    warning came up in, or, for many, their files: `tests/test_echo.py: 2 warnings`.
    """
    summary = output.partition(" warnings summary ")[2].partition("-- Docs: ")[0]
    reasons = {}
    for block in summary.split("\n\n"):
        found = NEVER_AWAITED.search(block)
        if found:
            where = found["file"].replace("\\", "/").split(f"/{project}/")[-1]
            call = found["code"].strip()
            reason = f"`{shorten(call, 80)}` ({where}:{found['line']}) is not awaited: without `await` it never runs"
            tests = [line.rpartition(": ")[0] or line for line in block.splitlines() if line and line[0] != " "]
            reasons.update(dict.fromkeys(tests, reason))
    return reasons


def why_pytest_stopped(output: str) -> str:
    """Why pytest stopped before running any test, in one line: the last exception it printed, in words where one of
    the reasons knows it ("" when it printed none)."""
    lines = [line[1:].strip() if line.startswith("E ") else line.strip() for line in output.splitlines()]
    last = next((line for line in reversed(lines) if EXCEPTION_LINE.match(line)), "")
    return plain_reason(f"E   {last}") if last else ""
