"""What check prints: the behaviours a step's tests prove, failures first with their reasons, then the details."""

from __future__ import annotations

from collections import Counter

from tooling.junit import CaseResult
from tooling.words import plural, shorten

# What some Python 3.11 and 3.12 releases may raise as pytest parses a file to show a failure (CPython issue 106905).
PYTHON_3_11_AST_BUG = "SystemError: AST constructor recursion depth mismatch"
# What pytest says when a tear-down failed so badly that it could not set up the next test, in whatever file.
NOT_TORN_DOWN = "previous item was not torn down properly"


def sentence(case: CaseResult) -> str:
    """What a test checks, in plain words: its function's name without test_ and underscores."""
    if not case.module:
        return f"{case.name.replace('.', '/')}.py cannot be loaded"
    return case.name.partition("[")[0].removeprefix("test_").replace("_", " ")


def tests_and_clean_ups(cases: list[CaseResult]) -> tuple[list[CaseResult], list[CaseResult]]:
    """The tests, each once, and the clean-ups (tear-downs) that failed after a test that itself passed or failed.

    JUnit lists a test twice when it failed and its fixtures failed again as they were torn down; once, as an
    error, when only its tear-down failed, which may be that of fixtures shared with every test before it. So a
    failed tear-down is shown as the clean-up after its test, not as that test's own reason. And a test that
    pytest could not set up because of it is shown as not run, not as failing for pytest's own words.
    """
    cases = [case for case in cases if case.is_a_test()]
    failing = {(case.module, case.name) for case in cases if case.outcome == "failed" and case.phase != "teardown"}
    tests, clean_ups, torn_down_last = [], [], None
    for case in cases:
        if case.phase == "teardown":
            torn_down_last = case
            if (case.module, case.name) not in failing:  # else the test's own failure says more
                clean_ups.append(case)
                tests.append(case._replace(outcome="passed", reason="", report="", phase=""))
        elif case.phase == "setup" and NOT_TORN_DOWN in case.report:
            after = f'the clean-up after "{sentence(torn_down_last)}"' if torn_down_last else "the clean-up before it"
            # Not a failure of its own: it runs once the clean-up before it works, which the summary lists as failing.
            tests.append(case._replace(outcome="skipped", reason=f"not run, because {after} failed first"))
        else:
            tests.append(case)
    return tests, clean_ups


def behaviours(cases: list[CaseResult]) -> list[tuple[str, str, str]]:
    """(outcome, sentence, reason) for each test function, failures first; a parametrized test fails if any case does.

    The reason is a failure's or skip's (the first failing case's), and "" for a behaviour that works.
    """
    functions: dict[tuple[str, str], list[CaseResult]] = {}
    for case in tests_and_clean_ups(cases)[0]:
        functions.setdefault((case.module, case.name.partition("[")[0]), []).append(case)
    sentences = []
    for group in functions.values():
        outcomes = {case.outcome for case in group}
        outcome = "failed" if "failed" in outcomes else "passed" if "passed" in outcomes else "skipped"
        reason = next((case.reason for case in group if case.outcome == outcome), "") if outcome != "passed" else ""
        said = sentence(group[0])
        failing = [case.name.partition("[")[2][:-1] for case in group if case.outcome == "failed"]
        if group[0].module and 0 < len(failing) < len(group):
            said += " (fails for " + ", ".join(shorten(example) for example in failing) + ")"
        sentences.append((outcome, said, reason or ("see the details" if outcome == "failed" else "")))
    order = {"failed": 0, "skipped": 1, "passed": 2}
    return sorted(sentences, key=lambda item: order[item[0]])


def failed_clean_ups(cases: list[CaseResult]) -> list[tuple[str, str, str]]:
    """(outcome, sentence, reason) for each clean-up that failed, as behaviours gives them for the tests; the cases of a
    parametrized test that failed alike are one line, with their count."""
    counted = Counter((sentence(case), case.reason) for case in tests_and_clean_ups(cases)[1])
    return [
        ("failed", f'the clean-up after "{said}"' + (f" ({count} cases)" if count > 1 else ""), reason)
        for (said, reason), count in counted.items()
    ]


def print_summary(name: str, cases: list[CaseResult], stopped_with: list[str] | None = None, why: str = "") -> None:
    """The behaviours, failures first, under a line that says why they fail; read before any traceback.

    stopped_with: pytest's last lines when it stopped itself partway; then what ran is only part of the step, and
    nothing is counted. why: why pytest stopped, when it stopped before any test.
    """
    sentences = behaviours(cases)
    if not sentences:
        print(f"\n{name}: no test ran, because pytest stopped before running any (its message is below).")
        if why:
            print(f"It stopped at: {why}")
        return
    if stopped_with is None:
        passing = sum(outcome == "passed" for outcome, _, _ in sentences)
        print(f"\n{name}: {passing} of {len(sentences)} behaviours work")
    else:
        print(f"\n{name}: pytest itself stopped before the end, so some tests may not have run. Its last lines:")
        print("".join(f"    {line}\n" for line in stopped_with), end="")
        if any(PYTHON_3_11_AST_BUG in line for line in stopped_with):
            print(
                "That is a known bug of some Python 3.11 and 3.12 releases (CPython issue 106905), not of your "
                "code: check again, or use the newest release of your Python."
            )
        print("What the tests that ran before it stopped say:")
    failing = sum(outcome == "failed" for outcome, _, _ in sentences)
    groups: dict[tuple[str, str], list[str]] = {}
    for outcome, said, reason in [*sentences[:failing], *failed_clean_ups(cases), *sentences[failing:]]:
        groups.setdefault((outcome, reason), []).append(said)
    for (outcome, reason), group in groups.items():
        verb = {"failed": ("fails", "fail"), "skipped": ("is skipped", "are skipped"), "passed": ("works", "work")}
        heading = f"{'This' if len(group) == 1 else 'These'} {verb[outcome][len(group) > 1]}"
        print(f"{heading}: {reason}" if reason else f"{heading}:")
        for said in group:
            print(f"  {dict(passed='ok', failed='FAIL', skipped='skip')[outcome]:<6}{said}")


def print_details(cases: list[CaseResult], output: str, stopped_with: list[str] | None = None) -> None:
    """pytest's report of one failing test for each reason; all it said when it stopped before any test or partway."""
    tests, clean_ups = tests_and_clean_ups(cases)
    # A test pytest did not run has no report of its own: the summary names the clean-up that kept it from running.
    failed = [case for case in tests if case.outcome == "failed" and NOT_TORN_DOWN not in case.report] + clean_ups
    if not failed:
        print(f"\nThe details, what pytest said:\n{output.strip(chr(10))}")
        return
    shortest: dict[str, CaseResult] = {}
    for case in failed:
        if case.reason not in shortest or len(case.report) < len(shortest[case.reason].report):
            shortest[case.reason] = case
    more = len(failed) - len(shortest)
    same = "the same reason" if len(shortest) == 1 else "the same reasons"
    counted = f"; {plural(more, 'more test fails', 'more tests fail')} for {same}" if more else ""
    print(f"\nThe details, pytest's report of one failing test for each reason{'' if stopped_with else counted}:")
    for case in shortest.values():
        path = f"{(case.module or case.name).replace('.', '/')}.py"
        title = f"{path}::{case.name}" if case.module else path
        title += " (its clean-up)" if case.phase == "teardown" else ""
        print(f"\n{' ' + title + ' ':_^80}\n{case.report.strip(chr(10))}")
    if stopped_with is not None:
        print(f"\n{' what pytest said as it stopped ':_^80}\n{output.strip(chr(10))}")


# pytest's exit codes when it ran to the end: every test passed, some failed, none was collected. Others say it was
# interrupted (2), failed inside (3), was called wrongly (4), or its process crashed.
PYTEST_RAN_TO_THE_END = {0, 1, 5}


def pytest_stopped(code: int, cases: list[CaseResult], output: str) -> bool:
    """Whether pytest itself stopped before the end, rather than running every test; it may exit 1 when it does."""
    internal_error = "INTERNALERROR>" in output or any(case.name and not case.is_a_test() for case in cases)
    return internal_error or code not in PYTEST_RAN_TO_THE_END


def last_words(output: str, count: int = 4) -> list[str]:
    """pytest's last lines: those of its internal error when it had one, without the ^^^ that underline code."""
    lines = output.splitlines()
    internal = [line.removeprefix("INTERNALERROR>") for line in lines if line.startswith("INTERNALERROR>")]
    said = [line.strip() for line in internal or lines if line.strip(" ^~")]
    return said[-count:] or ["(nothing)"]
