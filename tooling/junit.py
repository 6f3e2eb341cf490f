"""What pytest's JUnit report says of each test, and of a suite as a whole."""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import NamedTuple

from tooling.reasons import plain_reason

# How JUnit words a failure outside a test's own code: `failed on setup with "..."`, `failed on teardown with "..."`.
FIXTURE_FAILURE = re.compile(r'failed on (?P<phase>setup|teardown) with "(?P<message>.*)"', re.DOTALL)


def failure_phase(failure: ET.Element) -> tuple[str, str]:
    """Where a JUnit <failure> or <error> happened, and its message."""
    message = failure.get("message", "")
    if failure.tag == "failure":
        return "call", message
    fixture = FIXTURE_FAILURE.fullmatch(message)
    if fixture:
        return fixture["phase"], fixture["message"]
    return ("collect", "") if message == "collection failure" else ("", message)


class CaseResult(NamedTuple):
    """One test as pytest's JUnit report tells it."""

    module: str  # tests.test_echo, or "" when the file itself could not be loaded
    name: str  # test_foreign_origin_is_refused[http://evil.example], or the module that could not be loaded
    outcome: str  # passed, failed or skipped
    reason: str  # why it failed, or its file could not be loaded, in plain words (see plain_reason); why it skipped
    report: str = ""  # pytest's report of a failure: the traceback
    seconds: float = 0.0  # how long it took, set-up and tear-down included
    phase: str = ""  # where a failure happened: setup, call, teardown (the fixtures after it), collect, or "" (none)

    @classmethod
    def from_junit(cls, case: ET.Element) -> CaseResult:
        failure = next((child for child in case if child.tag in ("failure", "error")), None)
        seconds = float(case.get("time") or 0)
        module, name = case.get("classname", ""), case.get("name", "")
        if failure is None:
            skipped = next((child.get("message", "") for child in case if child.tag == "skipped"), None)
            return cls(module, name, "passed" if skipped is None else "skipped", skipped or "", "", seconds)
        report = "".join(child.text or "" for child in case if child.tag in ("failure", "error"))
        phase, message = failure_phase(failure)
        return cls(module, name, "failed", plain_reason(report) or message, report, seconds, phase)

    def test_id(self) -> str:
        """The test as pytest names it: tests/test_echo.py::test_message_is_echoed_to_the_sender."""
        return f"{self.module.replace('.', '/')}.py::{self.name}"

    def is_a_test(self) -> bool:
        """False for what JUnit lists beside the tests: pytest's own internal error, and a case without a name."""
        return bool(self.name) and (self.module, self.name) != ("pytest", "internal")


class SuiteResult(NamedTuple):
    """One suite's pytest run: its exit code, the totals of its JUnit report, how long it took and its tests."""

    name: str  # 03_channel_layer, 08_delivery on PostgreSQL, repository checks
    code: int
    counts: dict[str, int]  # tests, failures, errors, skipped
    seconds: float
    cases: list[CaseResult]


def read_junit(junit: Path) -> tuple[dict[str, int], list[CaseResult]]:
    """The totals and the tests of pytest's JUnit report; none when pytest stopped before writing it."""
    counts = {"tests": 0, "failures": 0, "errors": 0, "skipped": 0}
    cases = []
    if junit.exists():
        for suite in ET.parse(junit).getroot().iter("testsuite"):
            for key in counts:
                counts[key] += int(suite.get(key, 0))
            cases.extend(CaseResult.from_junit(case) for case in suite.iter("testcase"))
    return counts, cases
