"""requirements.lock installs from wheels alone on every supported Python and system, so nobody needs a C compiler.

uv resolves the lock for each combination as pip would install it there, with source builds forbidden; it reads
only the package index and the packages' metadata, never downloading a wheel.
"""

import importlib.util
import re
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor

import pytest

from tooling.ci import missing
from tooling.config import CONFIG, LOCK, NEWEST_PYTHON, OLDEST_PYTHON, REQUIREMENTS

SYSTEMS = {
    "linux-x86_64": "x86_64-manylinux_2_28",
    "linux-aarch64": "aarch64-manylinux_2_28",
    "macos-arm64": "aarch64-apple-darwin",
    "macos-x86_64": "x86_64-apple-darwin",
    "windows-amd64": "x86_64-pc-windows-msvc",
}
PYTHONS = [f"3.{minor}" for minor in range(OLDEST_PYTHON[1], NEWEST_PYTHON[1] + 1)]
PIN = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._-]*)==([^\s;]+)", re.MULTILINE)


def uv_compile(*args: str, **options) -> subprocess.CompletedProcess:
    """`uv pip compile` with wheels only, using the Python that runs the tests and never downloading another.

    Named with --python, that Python is the one uv asks for facts; otherwise, for each --python-version, it looks
    for an interpreter of that version, running every `python` on PATH to ask its version (through a version
    manager's shims, half a second a call). The version and the system it resolves for are those given, whichever
    Python it asks.
    """
    command = [sys.executable, "-m", "uv", "pip", "compile", "--quiet", "--no-header", "--no-annotate"]
    command += ["--no-python-downloads", "--system-certs", "--only-binary", ":all:", "--python", sys.executable]
    return subprocess.run([*command, *args], capture_output=True, text=True, **options)


def pins(text: str) -> set[tuple[str, str]]:
    return {(re.sub(r"[-_.]+", "-", name).lower(), version) for name, version in PIN.findall(text)}


@pytest.fixture(scope="module")
def package_index():
    """Read the index and metadata of every package in the lock once, so each combination can resolve offline."""
    if importlib.util.find_spec("uv") is None:
        missing("uv is not installed: run `python3 workshop.py test`, which installs requirements.lock")
    result = uv_compile("--universal", "--python-version", CONFIG["python"]["oldest"], str(LOCK))
    if result.returncode and "No solution found" not in result.stderr:
        missing(f"uv could not read the package index; this check needs the network: {result.stderr.strip()}")
    assert result.returncode == 0, result.stderr


@pytest.fixture(scope="module")
def resolutions(package_index):
    """uv's resolution of the lock for each (Python, system), several at once.

    Each first resolves from what package_index has just read into uv's cache, and asks the index only when
    something it needs is not there: two dozen rounds of questions to the index take half a minute.
    """
    combinations = [(python, system) for python in PYTHONS for system in SYSTEMS]

    def resolve(combination):
        python, system = combination
        target = ("--python-version", python, "--python-platform", SYSTEMS[system], str(LOCK))
        from_cache = uv_compile("--offline", *target)
        return from_cache if from_cache.returncode == 0 else uv_compile(*target)

    with ThreadPoolExecutor(max_workers=len(SYSTEMS)) as pool:
        return dict(zip(combinations, pool.map(resolve, combinations), strict=True))


@pytest.mark.parametrize("system", SYSTEMS)
@pytest.mark.parametrize("python", PYTHONS)
def test_the_lock_installs_from_wheels_alone(python, system, resolutions):
    result = resolutions[python, system]

    assert result.returncode == 0, f"Python {python} on {system}: {result.stderr}"
    assert pins(result.stdout) <= pins(LOCK.read_text(encoding="utf-8")), (
        "the lock misses packages: run `python3 workshop.py lock`"
    )


def test_the_check_notices_a_release_without_a_wheel(package_index):
    # autobahn 26.10.2, the release daphne pulled in before the lock, has no wheel for Python 3.15 on Windows.
    result = uv_compile(
        *("--no-deps", "--python-version", "3.15", "--python-platform", SYSTEMS["windows-amd64"], "-"),
        input="autobahn==26.10.2\n",
    )

    assert result.returncode != 0 and "no usable wheels" in result.stderr, result.stderr


def test_the_lock_pins_what_requirements_txt_pins():
    wanted = pins(REQUIREMENTS.read_text(encoding="utf-8"))

    assert wanted - pins(LOCK.read_text(encoding="utf-8")) == set(), (
        "requirements.lock is stale: run `python3 workshop.py lock`"
    )
