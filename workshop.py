"""Set up and drive the workshop from one script, on Linux, macOS and Windows.

    python workshop.py run [STEP]     serve a step at http://127.0.0.1:8000/chat/
    python workshop.py test [STEP]    run every step's suite and the repository checks
    python workshop.py generate       rewrite docs/diffs/, the tables of steps, the steps' times and the chapters' code
    python workshop.py bench [STEP]   load a step with many sockets; docs/performance.md has the results
    python workshop.py lock           pin what requirements.txt pulls in, in requirements.lock

Type a step yourself in workbench/ (ignored by git; what it replaces goes to a backup):

    python workshop.py start STEP     copy the step before STEP into workbench/
    python workshop.py check [STEP]   run STEP's tests against workbench/
    python workshop.py compare [STEP] show how workbench/'s code differs from STEP (--tests: the tests too)
    python workshop.py reset STEP     replace workbench/ with STEP itself
    python workshop.py run workbench  serve workbench/

Both run and test create .venv and install requirements.lock into it first.
STEP is a number (2, 02) or a folder name (02_echo_consumer); check and compare default to
the step workbench/ was started or reset at, or last passed the tests of, or a later step whose
new files it already holds.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from typing import NamedTuple

from bench.bench import add_arguments as add_bench_arguments

# Each name imported as itself is imported from here by tests/test_steps.py; the other checks import from tooling/.
from tooling.config import CONFIG as CONFIG
from tooling.config import ROOT as ROOT
from tooling.config import STEP_PAIRS as STEP_PAIRS
from tooling.config import (
    STEPS,
    STEPS_DIR,
    STEPS_WITH_LOGIN,
    STEPS_WITHOUT_REDIS,
    WORKBENCH,
    WorkshopError,
    resolve_step,
)
from tooling.diffs import changed_code_lines as changed_code_lines
from tooling.diffs import step_files as step_files
from tooling.generate import generate
from tooling.generate import new_project_like_step_01 as new_project_like_step_01
from tooling.processes import STOP_SIGNALS, stop_like_ctrl_c
from tooling.serve import bench, run
from tooling.suites import test
from tooling.venv import check_python, lock
from tooling.workbench import PROJECT_FILES as PROJECT_FILES
from tooling.workbench import check_workbench, compare_workbench, reset_workbench, run_workbench, start_workbench


class Command(NamedTuple):
    help: str
    # Adds the command's arguments to its parser.
    arguments: Callable[[argparse.ArgumentParser], object]
    # Does the command with its parsed arguments and the whole command line; returns the exit status.
    does: Callable[[argparse.Namespace, list[str]], int]


def no_arguments(parser: argparse.ArgumentParser) -> None:
    pass


def a_step(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("step")


def a_step_or_none(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("step", nargs="?")


def run_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("step", nargs="?", default=STEPS[-1])
    parser.add_argument("--port", type=int, default=8000)


def compare_arguments(parser: argparse.ArgumentParser) -> None:
    a_step_or_none(parser)
    parser.add_argument("--tests", action="store_true", help="show the test files that differ too, after the code")


def serve(args: argparse.Namespace, argv: list[str]) -> int:
    if args.step == "workbench":
        return run_workbench(WORKBENCH, args.port)
    slug = resolve_step(args.step)
    return run(STEPS_DIR / slug, args.port, slug not in STEPS_WITHOUT_REDIS, slug in STEPS_WITH_LOGIN)


def run_tests(args: argparse.Namespace, argv: list[str]) -> int:
    steps = [resolve_step(args.step)] if args.step else STEPS
    return test([(slug, STEPS_DIR / slug) for slug in steps], repository_checks=not args.step)


COMMANDS = {
    "run": Command("serve a step (default: the last one), or `workbench`", run_arguments, serve),
    "test": Command("run the tests (default: every step and the repository checks)", a_step_or_none, run_tests),
    "generate": Command(
        "rewrite docs/diffs/, the tables of steps, their times and the chapters' code",
        no_arguments,
        lambda args, argv: generate(),
    ),
    "bench": Command(
        "measure a step under load (see docs/performance.md)", add_bench_arguments, lambda args, argv: bench(argv)
    ),
    "lock": Command(
        "pin what requirements.txt pulls in, in requirements.lock", no_arguments, lambda args, argv: lock()
    ),
    "start": Command(
        "copy the code a step starts from into workbench/",
        a_step,
        lambda args, argv: start_workbench(args.step, WORKBENCH),
    ),
    "check": Command(
        "run a step's tests against workbench/",
        a_step_or_none,
        lambda args, argv: check_workbench(args.step, WORKBENCH),
    ),
    "compare": Command(
        "show the code left to type: workbench/'s diff to a step",
        compare_arguments,
        lambda args, argv: compare_workbench(args.step, WORKBENCH, tests=args.tests),
    ),
    "reset": Command(
        "replace workbench/ with a step's code", a_step, lambda args, argv: reset_workbench(args.step, WORKBENCH)
    ),
}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="workshop.py", description=__doc__.split("\n\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)
    for name, command in COMMANDS.items():
        command.arguments(commands.add_parser(name, help=command.help))
    args = parser.parse_args(argv)
    try:
        check_python()
        return COMMANDS[args.command].does(args, sys.argv[1:] if argv is None else argv)
    except WorkshopError as error:
        print(f"\nworkshop: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("\nworkshop: stopped, and so is everything it started", file=sys.stderr)
        return 130


if __name__ == "__main__":
    stop_like_ctrl_c(*STOP_SIGNALS)
    sys.exit(main())
