import sys

from tooling.ci import missing
from tooling.config import STEPS, STEPS_DIR, WorkshopError
from tooling.junit import CaseResult
from tooling.redis_server import find_redis_server
from tooling.suites import postgresql_suites, report, run_side_by_side

COUNTS = {"tests": 3, "failures": 0, "errors": 0, "skipped": 0}


def test_the_report_names_the_slowest_tests_slowest_first(capsys):
    cases = [
        CaseResult("tests.test_echo", "test_quick", "passed", "", seconds=0.1),
        CaseResult("tests.test_browser", "test_slow[lobby]", "passed", "", seconds=9.5),
        CaseResult("tests.test_echo", "test_middling", "passed", "", seconds=2.0),
    ]

    assert report([("02_echo_consumer", 0, COUNTS, 11.6, cases)]) == 0

    listed = [
        line.split("s  ", 1)[1] for line in capsys.readouterr().out.splitlines() if line.endswith("]") or "::" in line
    ]
    assert listed == [
        "02_echo_consumer: tests/test_browser.py::test_slow[lobby]",
        "02_echo_consumer: tests/test_echo.py::test_middling",
        "02_echo_consumer: tests/test_echo.py::test_quick",
    ]


SUITE = """
import os
from pathlib import Path


def test_note_the_redis_url():
    Path(os.environ["NOTE"]).write_text(os.environ.get("REDIS_URL", "none"))


def test_{outcome}():
    assert {outcome!r} == "passes"
"""


def test_suites_side_by_side_each_get_a_redis_of_their_own_and_are_reported_in_order(tmp_path, monkeypatch, capsys):
    monkeypatch.delenv("REDIS_URL", raising=False)
    try:
        find_redis_server(sys.executable)
    except WorkshopError as error:
        missing(str(error))
    suites = []
    for name, outcome in [("01_http", "passes"), ("03_channel_layer", "fails"), ("04_async", "passes")]:
        folder = tmp_path / name
        folder.mkdir()
        (folder / "test_suite.py").write_text(SUITE.format(outcome=outcome))
        suites.append((name, folder))
    monkeypatch.setenv("NOTE", "redis_url.txt")

    results = run_side_by_side(sys.executable, suites, at_once=2)

    assert [(name, counts["tests"], counts["failures"]) for name, _, counts, *_ in results] == [
        ("01_http", 2, 0),
        ("03_channel_layer", 2, 1),
        ("04_async", 2, 0),
    ]
    urls = [(folder / "redis_url.txt").read_text() for _, folder in suites]
    assert urls[0] == "none" and urls[1] != urls[2] and all(url.startswith("redis://") for url in urls[1:]), urls
    out = capsys.readouterr().out
    # Each suite's output comes in one piece, under its heading, once the suite has ended.
    headings = [line.split(" (")[0] for line in out.splitlines() if line.startswith("===== ")]
    assert sorted(headings) == ["===== 01_http", "===== 03_channel_layer", "===== 04_async"]
    assert out.index("1 failed, 1 passed") > out.index("===== 03_channel_layer")


def test_a_whole_run_takes_the_last_step_to_postgresql_and_a_named_step_its_own():
    steps = [(slug, STEPS_DIR / slug) for slug in STEPS]
    earlier = next(slug for slug, _ in postgresql_suites(steps, whole_run=False)).removesuffix(" on PostgreSQL")

    assert [name for name, _ in postgresql_suites(steps, whole_run=True)] == [f"{STEPS[-1]} on PostgreSQL"]
    assert earlier != STEPS[-1]
    assert [name for name, _ in postgresql_suites([(earlier, STEPS_DIR / earlier)], whole_run=False)] == [
        f"{earlier} on PostgreSQL"
    ]
