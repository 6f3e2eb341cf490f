from pathlib import Path

import pytest

from workshop import STEPS, STEPS_DIR


@pytest.fixture(params=STEPS)
def step(request) -> Path:
    return STEPS_DIR / request.param
