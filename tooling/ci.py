"""Continuous integration, where everything a check needs is installed: there a check that would skip fails."""

from __future__ import annotations

import os
from typing import NoReturn


def under_ci() -> bool:
    return os.environ.get("CI", "").lower() == "true"


def missing(message: str) -> NoReturn:
    """Skip a test that lacks something it needs; under CI, where nothing may be skipped, fail it."""
    import pytest  # only tests call this, and they run in pytest; workshop.py runs before it is installed

    if under_ci():
        pytest.fail(message)
    pytest.skip(message)
