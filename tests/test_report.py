import workshop
from workshop import CaseResult

COUNTS = {"tests": 3, "failures": 0, "errors": 0, "skipped": 0}


def test_the_report_names_the_slowest_tests_slowest_first(capsys):
    cases = [
        CaseResult("tests.test_echo", "test_quick", "passed", "", seconds=0.1),
        CaseResult("tests.test_browser", "test_slow[lobby]", "passed", "", seconds=9.5),
        CaseResult("tests.test_echo", "test_middling", "passed", "", seconds=2.0),
    ]

    assert workshop.report([("02_echo_consumer", 0, COUNTS, 11.6, cases)]) == 0

    listed = [
        line.split("s  ", 1)[1] for line in capsys.readouterr().out.splitlines() if line.endswith("]") or "::" in line
    ]
    assert listed == [
        "02_echo_consumer: tests/test_browser.py::test_slow[lobby]",
        "02_echo_consumer: tests/test_echo.py::test_middling",
        "02_echo_consumer: tests/test_echo.py::test_quick",
    ]
