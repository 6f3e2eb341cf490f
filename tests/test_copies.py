"""Each step is a whole project, so most of its files are copies of the same file in other steps. A fix to one copy
has to reach every other, and the copies of a file form a family: the steps, by number, that hold it byte for byte.

When a check here fails:
- a copy differs from the rest of its family: make the same change in every step of the family; or, if a step now
  changes the file on purpose, split its range below;
- two steps hold the same file but no family says so: add the family below, so that the next fix reaches both.
"""

import ast
import difflib
from functools import cache
from pathlib import Path

import pytest

from tooling import chromium
from workshop import STEPS, STEPS_DIR, step_files

# A file's path inside a step, and its families: ranges of steps ("05-07": steps 05, 06 and 07) that hold one copy.
COPY_FAMILIES = {
    "chat/__init__.py": ["01-08"],
    "chat/admin.py": ["01-04", "05-08"],
    "chat/apps.py": ["01-05", "06-08"],
    "chat/limits.py": ["06-08"],
    "chat/management/__init__.py": ["05-08"],
    "chat/management/commands/__init__.py": ["05-08"],
    "chat/management/commands/create_demo_users.py": ["05-08"],
    "chat/messages.py": ["02-08"],
    "chat/migrations/0001_initial.py": ["05-08"],
    "chat/migrations/0002_numbers.py": ["07-08"],
    "chat/migrations/__init__.py": ["01-08"],
    "chat/models.py": ["01-04", "05-06"],
    "chat/outages.py": ["06-08"],
    "chat/room_names.py": ["01-08"],
    "chat/routing.py": ["02-08"],
    "chat/signals.py": ["06-08"],
    "chat/static/chat/room.js": ["02-04"],
    "chat/static/chat/style.css": ["02-08"],
    "chat/templates/chat/base.html": ["01-04", "05-08"],
    "chat/templates/chat/index.html": ["01-08"],
    "chat/templates/chat/room.html": ["02-08"],
    "chat/templates/registration/login.html": ["05-08"],
    "chat/urls.py": ["01-08"],
    "chat/views.py": ["02-04", "05-08"],
    "manage.py": ["01-08"],
    "mysite/__init__.py": ["01-08"],
    "mysite/asgi.py": ["02-04", "05-08"],
    "mysite/settings.py": ["01-02", "03-04", "05-06", "07-08"],
    "mysite/urls.py": ["01-04", "05-08"],
    "mysite/wsgi.py": ["01-08"],
    "pytest.ini": ["01-06", "07-08"],
    "tests/browser.py": ["01-08"],
    "tests/conftest.py": ["03-04", "05-06", "07-08"],
    "tests/pages.py": ["01-08"],
    "tests/servers.py": ["03-04", "05-06", "07-08"],
    "tests/sockets.py": ["02-04", "05-06", "07-08"],
    "tests/test_across_processes.py": ["03-04", "05-06", "07-08"],
    "tests/test_bad_input.py": ["02-04", "05-07"],
    "tests/test_browser.py": ["03-04"],
    "tests/test_dead_peer.py": ["03-04", "05-08"],
    "tests/test_demo_users.py": ["05-08"],
    "tests/test_echo.py": ["03-04", "05-08"],
    "tests/test_frame_size.py": ["03-04", "05-06", "07-08"],
    "tests/test_group_broadcast.py": ["03-04", "07-08"],
    "tests/test_group_commit.py": ["07-08"],
    "tests/test_handshake.py": ["02-04", "05-08"],
    "tests/test_idle_socket.py": ["03-04", "05-08"],
    "tests/test_index_page.py": ["01-08"],
    "tests/test_login.py": ["06-08"],
    "tests/test_project.py": ["01-04", "05-08"],
    "tests/test_redis_outage.py": ["03-04", "07-08"],
    "tests/test_room_page.py": ["02-08"],
    "tests/test_server_busy.py": ["07-08"],
    "tests/test_settings.py": ["07-08"],
    "tests/test_slow_room.py": ["05-08"],
}
DIFF_LINES = 20  # of the first differing copy, shown in the failure
SLUGS = {slug.split("_")[0]: slug for slug in STEPS}


def members(family: str) -> list[str]:
    first, _, last = family.partition("-")
    return [number for number in SLUGS if first <= number <= last]


def declare(numbers: list[str]) -> str:
    """What to write in COPY_FAMILIES for steps found to hold one copy."""
    if numbers == members(f"{numbers[0]}-{numbers[-1]}"):
        return f'declare "{numbers[0]}-{numbers[-1]}"'
    return "a step between them holds another copy, and a family is one range: declare the ranges among them"


@cache
def copies(path: str) -> dict[str, bytes]:
    """The step number and content of every step's copy of path."""
    found = {number: STEPS_DIR / slug / path for number, slug in SLUGS.items()}
    return {number: file.read_bytes() for number, file in found.items() if file.is_file()}


@cache
def files_by_path() -> dict[str, list[str]]:
    """Every path any step holds, with the numbers of the steps that hold it."""
    paths: dict[str, list[str]] = {}
    for number, slug in SLUGS.items():
        for path in step_files(STEPS_DIR / slug):
            paths.setdefault(path, []).append(number)
    return paths


def test_copy_families_are_ranges_of_steps_that_do_not_overlap():
    wrong = []
    for path, families in COPY_FAMILIES.items():
        for family in families:
            first, _, last = family.partition("-")
            if not (first in SLUGS and last in SLUGS and first < last):
                wrong.append(f"{path}: {family} is not a range of two or more steps, first-last, as in 05-07")
        held = [number for family in families for number in members(family)]
        if len(set(held)) < len(held):
            wrong.append(f"{path}: {families} overlap; the steps that hold one copy are one family")

    assert wrong == [], "\n".join(wrong)


@pytest.mark.parametrize(
    ("path", "family"), [(path, family) for path, families in COPY_FAMILIES.items() for family in families]
)
def test_every_copy_in_a_family_is_the_same(path, family):
    held = copies(path)
    absent = [number for number in members(family) if number not in held]
    assert absent == [], f"{path}, family {family}: steps {', '.join(absent)} have no copy"
    versions: dict[bytes, list[str]] = {}
    for number in members(family):
        versions.setdefault(held[number], []).append(number)
    if len(versions) == 1:
        return
    # The copy most steps hold is taken as the family's; with a tie, that of the first step.
    usual, *others = sorted(versions.items(), key=lambda version: -len(version[1]))
    differing = [number for _, numbers in others for number in numbers]
    diff = difflib.unified_diff(
        usual[0].decode(errors="replace").splitlines(),
        others[0][0].decode(errors="replace").splitlines(),
        f"steps/{SLUGS[usual[1][0]]}/{path}",
        f"steps/{SLUGS[others[0][1][0]]}/{path}",
        lineterm="",
    )
    pytest.fail(
        f"copy family {path} (steps {family}): step {', '.join(differing)} differs from step "
        f"{', '.join(usual[1])}.\nMake the same change in every copy: steps {family} each hold {path}, and a fix "
        f"to one is a fix to all. If a step now changes the file on purpose, split {family} in COPY_FAMILIES "
        "(tests/test_copies.py).\n" + "\n".join(list(diff)[:DIFF_LINES]),
        pytrace=False,
    )


def test_every_file_two_steps_hold_alike_is_in_a_family():
    undeclared = []
    for path, numbers in files_by_path().items():
        declared = [set(members(family)) for family in COPY_FAMILIES.get(path, [])]
        alike: dict[bytes, list[str]] = {}
        for number in numbers:
            alike.setdefault(copies(path)[number], []).append(number)
        for same in alike.values():
            if len(same) > 1 and not any(set(same) <= family for family in declared):
                undeclared.append(f"{path}: steps {', '.join(same)} hold the same copy; {declare(same)}")

    assert undeclared == [], (
        "files copied between steps but in no copy family; declare each in COPY_FAMILIES (tests/test_copies.py), "
        "so that a fix to one copy is checked to reach the others:\n" + "\n".join(undeclared)
    )


def test_the_tooling_launches_chromium_as_the_steps_tests_do():
    """tooling/chromium.py repeats what each step's tests/browser.py sets, as a step stands alone: they stay alike."""
    source = ast.parse((STEPS_DIR / STEPS[-1] / "tests/browser.py").read_text(encoding="utf-8"))
    values = {node.targets[0].id: node.value for node in source.body if isinstance(node, ast.Assign)}

    assert ast.literal_eval(values["CHROMIUM_FLAGS"]) == chromium.CHROMIUM_FLAGS
    assert [Path(call.args[0].value) for call in values["DEBIAN_CHROMIUMS"].elts] == chromium.DEBIAN_CHROMIUMS
