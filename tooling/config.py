"""The repository's paths and the facts of each step, read from steps.json: the one place they are written."""

from __future__ import annotations

import json
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
STEPS_DIR = ROOT / "steps"
DIFFS_DIR = ROOT / "docs" / "diffs"
README = ROOT / "README.md"
VENV = ROOT / ".venv"
REQUIREMENTS = ROOT / "requirements.txt"
# Every package requirements.txt pulls in, pinned for each supported Python and system; written by `lock`.
LOCK = ROOT / "requirements.lock"
CONFIG = json.loads((ROOT / "steps.json").read_text(encoding="utf-8"))
STEPS = [step["slug"] for step in CONFIG["steps"]]
# Everything else (later steps, the repository checks that run step suites, a workbench at a later step or at no
# known step) gets Redis.
STEPS_WITHOUT_REDIS = {step["slug"] for step in CONFIG["steps"] if not step.get("redis")}
# The steps whose chat accepts only logged-in users: serving one creates the demo users, and the benchmark logs its
# clients in.
STEPS_WITH_LOGIN = {step["slug"] for step in CONFIG["steps"] if step.get("login")}
STEP_PAIRS = [(STEPS[index - 1], STEPS[index]) for index in range(1, len(STEPS))]
OLDEST_PYTHON = tuple(int(part) for part in CONFIG["python"]["oldest"].split("."))
NEWEST_PYTHON = tuple(int(part) for part in CONFIG["python"]["newest"].split("."))
WORKBENCH = ROOT / "workbench"
# Inside workbench/: the step it was started or reset at, or last passed the tests of, so check, compare and run need
# no step number; on a second line, which of the three it was.
WORKBENCH_STEP = ".workshop-step"
# The guide: a chapter per step, the outline and the pages beside them.
CHAPTERS_DIR = ROOT / "docs"


class WorkshopError(Exception):
    """A problem the attendee can fix; the message says how."""


def supported_pythons() -> str:
    return f"{CONFIG['python']['oldest']} to {CONFIG['python']['newest']}"


def resolve_step(name: str) -> str:
    for slug in STEPS:
        if name == slug or (name.isdigit() and int(name) == int(slug.split("_")[0])):
            return slug
    raise WorkshopError(f"there is no step {name!r}; the steps are {', '.join(STEPS)}.")
