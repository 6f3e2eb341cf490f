"""How the tooling words what it tells the attendee: paths, step numbers, commands, counts."""

from __future__ import annotations

import os
from pathlib import Path

from tooling.config import ROOT


def shorten(text: str, width: int = 24) -> str:
    return text if len(text) <= width else text[: width - 3] + "..."


def plural(count: int, one: str, more: str) -> str:
    return f"{count} {one if count == 1 else more}"


def command_line(*words: str) -> str:
    """A workshop.py command as the attendee types it on this system."""
    return " ".join(["py" if os.name == "nt" else "python3", "workshop.py", *words])


def number(slug: str) -> str:
    return slug.split("_")[0]


def shown(path: Path) -> str:
    """A path as the attendee sees it from the repository's folder."""
    return (path.relative_to(ROOT) if path.is_relative_to(ROOT) else path).as_posix()
