from pathlib import Path

import pytest

from tooling.config import STEPS, STEPS_DIR


@pytest.fixture(params=STEPS)
def step(request) -> Path:
    return STEPS_DIR / request.param
