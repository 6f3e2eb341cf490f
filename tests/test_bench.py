"""The benchmark counts right: at a load any server handles, it sees every message arrive once, in order."""

import argparse
import asyncio
import json
import os
import struct
import subprocess
import sys
import time
from pathlib import Path
from types import SimpleNamespace

import pytest

from bench.bench import (
    Client,
    Load,
    Run,
    add_arguments,
    deliveries,
    expected_deliveries,
    planned_loads,
    resident_kib,
    write_plot,
)
from bench.profile_table import samples, table
from helpers import driver_problem
from tooling.ci import missing
from tooling.config import ROOT, STEPS

COLUMNS = (
    "| target | rooms × clients | offered/s | delivered/s | p50 ms | p99 ms | lost | acknowledged | refused | held "
    "| not saved | duplicated | out of order | connect errors | closed early | RSS growth MB |"
)
LABEL = "bench0-42"


def run_bench(folder, *arguments):
    """Run the benchmark at a tiny load; its printed output and the results it wrote as JSON."""
    if not os.environ.get("REDIS_URL"):
        missing("the benchmark needs REDIS_URL: run `python workshop.py test`, which starts a Redis server")
    results = folder / "results.json"
    command = [sys.executable, "bench/bench.py", *arguments, "--json", str(results)]
    finished = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert finished.returncode == 0, finished.stdout + finished.stderr
    return finished.stdout, json.loads(results.read_text(encoding="utf-8"))


def assert_every_message_arrived_once_in_order(result, sockets):
    assert result["expected"] == result["sent"] * sockets
    assert result["delivered"] == result["expected"]
    assert (result["lost"], result["duplicated"], result["out_of_order"]) == (0, 0, 0)
    assert (result["connect_errors"], result["closed_early"], result["errors"]) == (0, 0, {})


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    """Step 05, the first whose clients log in, and the plain server. Step 04, without a login, the run of two
    processes serves."""
    return run_bench(
        tmp_path_factory.mktemp("bench"),
        *("05", "--rooms", "2", "--clients", "3", "--messages", "3", "--rate", "10", "--targets", "ours,plain"),
    )


def test_every_message_reaches_each_socket_of_its_room_exactly_once(tiny_run):
    _, results = tiny_run

    assert [result["target"] for result in results] == ["ours", "plain"]
    for result in results:
        assert result["sent"] == 2 * 3 * 3
        assert_every_message_arrived_once_in_order(result, 3)


def test_the_report_says_how_late_the_clients_themselves_sent(tiny_run):
    output, results = tiny_run

    # A client sends each message once it is due, never before; at a tiny load, well within a second of it.
    assert all(0 <= result["send_lag_p99_ms"] < 1000 for result in results), [r["send_lag_p99_ms"] for r in results]
    assert "ours (daphne): its clients sent 99% of their messages within " in output


def test_offered_load_counts_every_socket_of_the_room(tiny_run):
    _, results = tiny_run

    assert [result["offered"] for result in results] == [2 * 3 * 10 * 3] * 2


def test_the_report_is_a_table_with_a_row_per_target(tiny_run):
    output, _ = tiny_run

    assert COLUMNS in output.splitlines()
    assert [line.split(" | ")[0] for line in output.splitlines() if line.startswith("| ") and "× 3" in line][-2:] == [
        "| ours (daphne)",
        "| plain",
    ]
    assert "ours (daphne): delivered/s × " in output


def test_the_report_has_the_servers_memory_growth_where_proc_tells_it(tiny_run):
    output, results = tiny_run

    with_proc = Path("/proc/self/status").exists()
    for result in results:
        assert isinstance(result["rss_growth_mb"], float) if with_proc else result["rss_growth_mb"] is None
    rows = [line for line in output.splitlines() if line.startswith("| ") and "× 3" in line]
    last_cells = [row.split(" | ")[-1].rstrip(" |") for row in rows]
    assert all(cell.startswith(("+", "-")) for cell in last_cells) if with_proc else set(last_cells) == {""}


def test_resident_memory_is_read_from_proc_where_there_is_one():
    if not Path("/proc/self/status").exists():
        assert resident_kib(os.getpid()) is None
        return
    assert resident_kib(os.getpid()) > 1024
    with subprocess.Popen([sys.executable, "-c", "pass"]) as ended:
        ended.wait()
    assert resident_kib(ended.pid) is None


def test_step_05_logged_in_users_get_every_message_exactly_once(tiny_run):
    _, [result, _] = tiny_run

    assert result["logged_in"] is True
    assert result["sent"] == 2 * 3 * 3
    assert_every_message_arrived_once_in_order(result, 3)
    assert result["earlier_messages"] == 0


@pytest.fixture(scope="module")
def two_processes_after_idling(tmp_path_factory):
    """Step 04 in two daphne processes, its sockets left idle for a second before they send: one run for two checks."""
    return run_bench(
        tmp_path_factory.mktemp("bench"),
        *("04", "--rooms", "2", "--clients", "3", "--messages", "3", "--rate", "10", "--targets", "ours"),
        *("--processes", "2", "--idle", "1"),
    )


def test_two_processes_share_every_room_and_deliver_everything_in_order(two_processes_after_idling):
    output, [result] = two_processes_after_idling

    assert result["processes"] == 2
    assert result["sent"] == 2 * 3 * 3
    assert_every_message_arrived_once_in_order(result, 3)
    assert any(line.startswith("| ours (daphne) ×2 | 2 × 3 |") for line in output.splitlines())


@pytest.fixture(scope="module")
def last_step_under_uvicorn(tmp_path_factory):
    """The last step in two uvicorn processes, and the plain server: one run for the checks of each."""
    return run_bench(
        tmp_path_factory.mktemp("bench"),
        *(STEPS[-1], "--rooms", "2", "--clients", "3", "--messages", "3", "--rate", "10", "--targets", "ours,plain"),
        *("--server", "uvicorn", "--processes", "2"),
    )


def test_the_report_names_the_server_of_each_step_target(last_step_under_uvicorn):
    output, results = last_step_under_uvicorn

    assert [(result["target"], result["server"], result["processes"]) for result in results] == [
        ("ours", "uvicorn", 2),
        ("plain", None, 1),
    ]
    for result in results:
        assert_every_message_arrived_once_in_order(result, 3)
    rows = [line.split(" | ")[0] for line in output.splitlines() if line.startswith("| ") and "× 3" in line]
    assert rows[-2:] == ["| ours (uvicorn) ×2", "| plain"]
    assert "ours (uvicorn) ×2: delivered/s × " in output


def test_the_last_step_under_uvicorn_acknowledges_and_delivers_every_message(last_step_under_uvicorn):
    _, [result, _] = last_step_under_uvicorn

    assert (result["server"], result["logged_in"]) == ("uvicorn", True)
    assert result["sent"] == 2 * 3 * 3
    assert_every_message_arrived_once_in_order(result, 3)
    assert (result["acknowledged"], result["refused"], result["not_saved"]) == (2 * 3 * 3, 0, 0)


def test_the_report_says_uvicorn_served_the_step(last_step_under_uvicorn):
    output, _ = last_step_under_uvicorn

    assert [line.split(" | ")[0] for line in output.splitlines() if line.startswith("| ours")][-1] == (
        "| ours (uvicorn) ×2"
    )


def message(sender, number, client_id=None):
    """A message as the steps send it, from the benchmark's client `sender` in the run LABEL."""
    fields = {"author": f"bench-{sender}", "message": f"{LABEL}:{sender}:{number}:0.0"}
    return {**fields, "client_id": client_id} if client_id else fields


def test_each_message_of_a_batch_frame_counts_once():
    run, client = Run(LABEL, None, client_ids=True), Client(0, 0)
    client.sent = 2

    client.take(json.dumps({"history_after": 7}), run, 1.0)
    client.take(
        json.dumps({"messages": [message(0, 0, f"{LABEL}-0"), message(1, 0), message(0, 1, f"{LABEL}-1")]}), run, 1.0
    )
    client.take(json.dumps({"messages": [message(1, 1)]}), run, 1.0)

    assert client.seen == {(0, 0): 1, (1, 0): 1, (0, 1): 1, (1, 1): 1}
    assert (run.delivered, client.out_of_order, client.acknowledged, run.errors) == (4, 0, {0, 1}, {})


def test_a_message_in_a_frame_of_its_own_still_counts_once():
    run, client = Run(LABEL, None), Client(0, 0)

    client.take(json.dumps(message(1, 0)), run, 1.0)
    client.take(json.dumps(message(1, 0)), run, 1.0)

    assert (client.seen, run.delivered, run.errors) == ({(1, 0): 2}, 1, {})


def test_messages_told_of_are_not_lost_but_an_acknowledged_one_missing_elsewhere_is():
    run, sender, other = Run(LABEL, None, client_ids=True), Client(0, 0), Client(0, 1)
    sender.sent = 4

    sender.take(json.dumps({"error": "busy", "refused": f"{LABEL}-1"}), run, 1.0)
    sender.take(json.dumps({"error": "not saved", "not_saved": [f"{LABEL}-2"]}), run, 1.0)
    sender.take(json.dumps({"messages": [message(0, 0, f"{LABEL}-0"), message(0, 3, f"{LABEL}-3")]}), run, 1.0)
    other.take(json.dumps({"messages": [message(0, 0, f"{LABEL}-0")]}), run, 1.0)

    assert (sender.refused, sender.not_saved, sender.acknowledged) == ({1}, {2}, {0, 3})
    expected, delivered = expected_deliveries([sender, other], {0: 2}), deliveries([sender, other])
    assert (expected, delivered) == ((4 - 2) * 2, 3)  # message 3 never reached the other socket: one lost
    assert run.errors == {}


def test_a_client_told_the_server_is_busy_holds_what_falls_due_before_it_may_send_again():
    run, client, sent = Run(LABEL, None, client_ids=True), Client(0, 0), []

    async def send(frame):
        sent.append(json.loads(frame)["client_id"])

    client.websocket = SimpleNamespace(send=send)  # all the client's send needs of a socket
    start = time.monotonic() - 60  # every message due already: none waits
    # Message n falls due between start + n and start + n + 1 seconds: 0 to 3 fall due before start + 4.
    client.take(json.dumps({"error": "busy", "refused": f"{LABEL}-0", "retry_after": 3}), run, start + 1)
    asyncio.run(client.send(Load(rooms=1, clients=1, messages=8, rate=1), start, run))

    assert (client.held, client.sent) == (4, 4)
    assert sent == [f"{LABEL}-{number}" for number in range(4, 8)]


def loads_for(*arguments):
    parser = argparse.ArgumentParser()
    add_arguments(parser)
    return [(load.messages, load.rate) for load in planned_loads(parser.parse_args(arguments))]


def test_the_benchmark_loads_the_last_step_unless_told_otherwise():
    parser = argparse.ArgumentParser()
    add_arguments(parser)

    assert (parser.parse_args([]).step, parser.parse_args(["04"]).step) == (STEPS[-1], "04")


def test_a_database_the_step_cannot_use_stops_the_benchmark_with_one_line(tmp_path):
    env = {**os.environ, "DATABASE_URL": "mysql://chat@127.0.0.1/chat", "REDIS_URL": "redis://127.0.0.1:9/0"}
    command = [sys.executable, "bench/bench.py", "07", "--messages", "1", "--targets", "ours"]

    finished = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=60)

    assert finished.returncode == 1
    last_line = finished.stderr.strip().splitlines()[-1]
    assert last_line == (
        "bench: `manage.py migrate` of 07_saves failed on the database DATABASE_URL names (its error is above)"
    )


def test_a_single_run_lasts_seconds_at_the_rate_instead_of_m_messages():
    assert loads_for() == [(40, 2.5)]
    assert loads_for("--seconds", "6", "--rate", "5") == [(30, 5)]
    assert loads_for("--messages", "7", "--rate", "5") == [(7, 5)]
    assert loads_for("--sweep", "1,2", "--seconds", "3") == [(3, 1), (6, 2)]


def test_seconds_are_bounded_and_not_given_with_messages():
    with pytest.raises(SystemExit, match="at most 120 seconds|up to 120"):
        loads_for("--seconds", "121")
    with pytest.raises(SystemExit, match="--messages or --seconds"):
        loads_for("--seconds", "2", "--messages", "5")


def test_a_flood_is_5000_messages_unless_told_otherwise():
    parser = argparse.ArgumentParser()
    add_arguments(parser)

    assert (parser.parse_args([]).flood, parser.parse_args(["--flood"]).flood) == (0, 5000)
    assert parser.parse_args(["--flood", "20"]).flood == 20


def test_a_flood_is_reported_apart_from_the_load(tmp_path):
    output, [result] = run_bench(
        tmp_path,
        *("06", "--rooms", "2", "--clients", "3", "--messages", "3", "--rate", "10", "--targets", "ours"),
        *("--flood", "200"),
    )

    assert_every_message_arrived_once_in_order(result, 3)
    flood = result["flood"]
    assert (flood["messages"], flood["others"], flood["connect_error"]) == (200, 3, None)
    assert flood["close_code"] == 4008
    assert flood["error_text"].startswith("Too many messages")
    assert flood["delivered_to_others"] < 200 * 3
    assert "ours (daphne): flood: " in output


def test_sockets_left_idle_stay_open_and_then_receive_everything(two_processes_after_idling):
    output, [result] = two_processes_after_idling

    assert (result["idle_seconds"], result["open_after_idle"]) == (1, 2 * 3)
    assert result["sent"] == 2 * 3 * 3
    assert_every_message_arrived_once_in_order(result, 3)
    assert "ours (daphne) ×2: after 1 s idle, 6 of 6 sockets still open" in output


def test_a_png_plot_is_the_svg_drawn_by_chromium(tmp_path):
    svg = (
        '<svg xmlns="http://www.w3.org/2000/svg" width="64" height="40"><rect width="64" height="40" fill="red"/></svg>'
    )
    if problem := driver_problem():
        missing(problem)
    try:
        write_plot(svg, tmp_path / "plot.png")
    except SystemExit as no_browser:
        missing(str(no_browser))

    png = (tmp_path / "plot.png").read_bytes()
    assert png.startswith(b"\x89PNG\r\n\x1a\n")
    assert struct.unpack(">II", png[16:24]) == (64, 40)


def test_a_profile_counts_each_sample_for_its_thread_and_the_code_that_was_running():
    event_loop = "thread (1): MainThread;run (asyncio/base_events.py:640)"
    database = "thread (2): ThreadPoolExecutor-0_0;_worker (concurrent/futures/thread.py:81)"
    raw = [
        f"{event_loop};write (asyncio/selector_events.py:1057) 6",
        f"{event_loop};encode (websockets/extensions/permessage_deflate.py:192) 2",
        f"{event_loop};chat_messages (chat/consumers.py:205) 1",
        f"{database};execute (django/db/backends/sqlite3/base.py:360) 3",
        f"{database};field_as_sql (django/db/models/sql/compiler.py:1703) 8",
    ]

    counts = samples(raw)

    assert counts == {
        ("event loop", "writing to sockets (asyncio's transports)"): 6,
        ("event loop", "compressing frames (permessage-deflate)"): 2,
        ("event loop", "the chat's own code"): 1,
        ("database thread", "SQLite running the statements"): 3,
        ("database thread", "Django building the queries and the model objects"): 8,
    }
    assert table(counts).splitlines()[2:4] == [
        "| **database thread** | | **55%** |",
        "| | Django building the queries and the model objects | 40.0% |",
    ]
