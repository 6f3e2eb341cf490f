from helpers import python_in
from tooling.config import ROOT


def test_ruff_finds_nothing():
    result = python_in(ROOT, "-m", "ruff", "check", "--no-cache", ".")

    assert result.returncode == 0, result.stdout


def test_code_is_formatted():
    result = python_in(ROOT, "-m", "ruff", "format", "--no-cache", "--check", ".")

    assert result.returncode == 0, result.stdout
