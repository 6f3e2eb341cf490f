"""What steps.json says of each step is true of its code, since the tooling reads it there and nowhere else."""

from tooling.config import STEPS, STEPS_DIR, STEPS_WITH_LOGIN
from tooling.workbench import DEMO_USERS


def test_the_steps_with_a_login_are_those_that_create_demo_users():
    assert STEPS_WITH_LOGIN == {slug for slug in STEPS if (STEPS_DIR / slug / DEMO_USERS).is_file()}
