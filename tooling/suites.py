"""The test command: each step's suite and the repository checks, side by side, then a table of the results."""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import NamedTuple

from tooling import venv
from tooling.ci import under_ci
from tooling.config import ROOT, STEPS_WITHOUT_REDIS
from tooling.junit import CaseResult, SuiteResult, read_junit
from tooling.postgresql import (
    ON_POSTGRESQL,
    POSTGRESQL_TESTS,
    find_postgresql,
    postgresql_environment,
    postgresql_missing,
    uses_postgresql,
)
from tooling.processes import child_process, run_to_the_end
from tooling.redis_server import redis_environment

# Suites side by side: one more than the machine has cores. Much of a suite's time is spent waiting for the servers
# and browsers its tests start (on 2 cores, one suite alone left 40 to 60% of the CPU idle); the extra one fills
# those waits.
SUITES_AT_ONCE = (os.cpu_count() or 1) + 1
# A suite run by itself spreads its test files over as many pytest-xdist processes, each with a test database, server
# and browser of its own: the browser tests in one, the rest shared by the others. Those others mostly wait, on
# daphne and on Redis's listener, so the extra process fills the cores (on 2 cores, in alternating runs, step 05 took
# 23.9 s in two processes and 20.0 s in three, step 06 21.3 s and 20.1 s: medians of three). A whole file stays in one
# process, so its module fixtures are made once. Suites side by side already keep the cores busy, one process each.
PROCESSES_PER_SUITE = ["-n", str(SUITES_AT_ONCE), "--dist", "loadfile"] if SUITES_AT_ONCE > 2 else []


def suite_passed(code: int, tests: int, skipped: int) -> bool:
    """pytest passed and ran something; under CI, where everything a test needs is installed, nothing skipped."""
    return code == 0 and tests > 0 and not (skipped and under_ci())


def postgresql_not_run(name: str) -> SuiteResult:
    """A suite reported as skipped, which fails under CI as any skipped test does."""
    case = CaseResult("", name, "skipped", postgresql_missing())
    return SuiteResult(name, 0, {"tests": 1, "failures": 0, "errors": 0, "skipped": 1}, 0.0, [case])


def run_pytest(
    python: str, folder: Path, env: dict[str, str], options: list[str]
) -> tuple[int, dict[str, int], float, list[CaseResult]]:
    with tempfile.TemporaryDirectory() as scratch:
        junit = Path(scratch) / "junit.xml"
        started = time.monotonic()
        code = run_to_the_end([python, "-m", "pytest", f"--junitxml={junit}", *options], cwd=folder, env=env)
        elapsed = time.monotonic() - started
        counts, cases = read_junit(junit)
    return code, counts, elapsed, cases


class RunningSuite(NamedTuple):
    name: str
    process: subprocess.Popen
    started: float
    junit: Path
    output: Path
    resources: contextlib.ExitStack


def start_suite(python: str, name: str, folder: Path, everything: contextlib.ExitStack) -> RunningSuite:
    resources = everything.enter_context(contextlib.ExitStack())
    scratch = Path(resources.enter_context(tempfile.TemporaryDirectory()))
    env = resources.enter_context(redis_environment(python, name not in STEPS_WITHOUT_REDIS, quiet=True))
    env = resources.enter_context(postgresql_environment(env, name.endswith(ON_POSTGRESQL), quiet=True))
    junit, output = scratch / "junit.xml", scratch / "output.txt"
    with output.open("wb") as sink:
        command = [python, "-m", "pytest", f"--junitxml={junit}"]
        command += POSTGRESQL_TESTS if name.endswith(ON_POSTGRESQL) else []
        process = resources.enter_context(
            child_process(command, cwd=folder, env=env, stdout=sink, stderr=subprocess.STDOUT)
        )
    return RunningSuite(name, process, time.monotonic(), junit, output, resources)


def run_side_by_side(python: str, suites: list[tuple[str, Path]], at_once: int) -> list[SuiteResult]:
    """Run the suites, `at_once` at a time, the last (the longest) first; print what each said once it has ended.

    Each has a Redis server of its own: Redis's pub/sub channels are shared by every client of a server, so tests
    of two steps in rooms of the same name would see each other's messages.
    """
    waiting = list(reversed(suites))
    running: list[RunningSuite] = []
    results = {}
    print(f"workshop: running {len(suites)} suites, {at_once} at a time; each one's output comes once it has ended")
    with contextlib.ExitStack() as everything:
        while waiting or running:
            while waiting and len(running) < at_once:
                running.append(start_suite(python, *waiting.pop(0), everything))
            for suite in [suite for suite in running if suite.process.poll() is not None]:
                running.remove(suite)
                elapsed = time.monotonic() - suite.started
                counts, cases = read_junit(suite.junit)
                print(f"\n===== {suite.name} ({elapsed:.1f} s) =====", flush=True)
                sys.stdout.write(suite.output.read_text(encoding="utf-8", errors="replace"))
                sys.stdout.flush()
                suite.resources.close()
                results[suite.name] = SuiteResult(suite.name, suite.process.returncode, counts, elapsed, cases)
            time.sleep(0.1)
    return [results[name] for name, _ in suites]


def print_slowest(results: list[SuiteResult], count: int = 10) -> None:
    """The tests that took longest, where a faster feedback loop would start."""
    cases = sorted(((case, name) for name, *_, cases in results for case in cases), key=lambda item: -item[0].seconds)
    if cases:
        print(f"\nthe {min(count, len(cases))} slowest tests:")
    for case, suite in cases[:count]:
        print(f"{case.seconds:>8.1f} s  {suite}: {case.module.replace('.', '/')}.py::{case.name}")


def report(results: list[SuiteResult]) -> int:
    print(f"\n{'suite':<24}{'tests':>7}{'failed':>8}{'skipped':>9}{'seconds':>9}  result")
    totals = {"passed": 0, "failed": 0, "skipped": 0}
    ok = True
    for name, code, counts, elapsed, _ in results:
        failed = counts["failures"] + counts["errors"]
        passed = counts["tests"] - failed - counts["skipped"]
        suite_ok = suite_passed(code, counts["tests"], counts["skipped"])
        ok = ok and suite_ok
        totals["passed"] += passed
        totals["failed"] += failed
        totals["skipped"] += counts["skipped"]
        result = "ok" if suite_ok else ("skipped under CI" if code == 0 and counts["skipped"] else "FAILED")
        print(f"{name:<24}{counts['tests']:>7}{failed:>8}{counts['skipped']:>9}{elapsed:>9.1f}  {result}")
    print_slowest(results)
    print(f"\ntotal: {totals['passed']} passed, {totals['failed']} failed, {totals['skipped']} skipped")
    return 0 if ok else 1


def postgresql_suites(suites: list[tuple[str, Path]], whole_run: bool) -> list[tuple[str, Path]]:
    """The suites whose database tests run again on PostgreSQL: each step's that reads DATABASE_URL, or in a whole run
    the last one's, the code that is deployed (an earlier step's are the same tests of a saver with less in it)."""
    on_postgresql = [(name + ON_POSTGRESQL, folder) for name, folder in suites if uses_postgresql(folder)]
    return on_postgresql[-1:] if whole_run else on_postgresql


def test(suites: list[tuple[str, Path]], repository_checks: bool) -> int:
    """Run pytest in each (name, folder) of suites, each in its own process, and report the totals.

    One suite shows pytest's output as it comes. Several run side by side, each with a Redis server of its own.
    """
    python = str(venv.ensure_venv())
    on_postgresql = postgresql_suites(suites, whole_run=repository_checks)
    not_run = []
    if on_postgresql and not find_postgresql():
        not_run = [postgresql_not_run(name) for name, _ in on_postgresql]
        print(f"\nworkshop: {not_run[0].cases[0].reason}", flush=True)
    else:
        suites += on_postgresql
    if repository_checks:
        suites.append(("repository checks", ROOT))
    if len(suites) > 1 and not os.environ.get("REDIS_URL"):
        return report(run_side_by_side(python, suites, SUITES_AT_ONCE) + not_run)
    results: list[SuiteResult] = []
    with redis_environment(python, any(name not in STEPS_WITHOUT_REDIS for name, _ in suites)) as env:
        for name, folder in suites:
            print(f"\n===== {name} =====", flush=True)
            options = [] if folder == ROOT else PROCESSES_PER_SUITE  # the repository checks set their own
            with postgresql_environment(env, name.endswith(ON_POSTGRESQL)) as suite_env:
                options = [*options, *POSTGRESQL_TESTS] if name.endswith(ON_POSTGRESQL) else options
                results.append(SuiteResult(name, *run_pytest(python, folder, suite_env, options)))
    return report(results + not_run)
