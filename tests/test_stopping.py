"""Stopping workshop.py stops what it started: an IDE's stop button, a closed terminal or Ctrl+C leaves no server."""

import os
import re
import signal
import subprocess
import sys
import urllib.request
from pathlib import Path

import pytest

from helpers import with_own_database
from tooling.config import ROOT
from tooling.processes import free_port, wait_until

pytestmark = pytest.mark.skipif(os.name == "nt", reason="Windows has no SIGTERM or SIGHUP to send")
PROC = Path("/proc")


def processes_in_session(session: int) -> dict[int, str]:
    """The live processes of a session, each with its command line."""
    if not PROC.is_dir():  # macOS
        listed = subprocess.run(["pgrep", "-s", str(session)], capture_output=True, text=True).stdout.split()
        commands = {int(pid): ps_field(pid, "command=") for pid in listed}
        return {pid: command for pid, command in commands.items() if command and not ps_field(pid, "stat=")[:1] == "Z"}
    found = {}
    for stat in PROC.glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rpartition(")")[2].split()
            command = (stat.parent / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:  # the process ended while being read
            continue
        state, process_session = fields[0], int(fields[3])
        if process_session == session and state != "Z":
            found[int(stat.parent.name)] = command.strip()
    return found


def ps_field(pid: str, field: str) -> str:
    return subprocess.run(["ps", "-o", field, "-p", pid], capture_output=True, text=True).stdout.strip()


def serves(port: int) -> bool:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/chat/", timeout=1) as response:
            return response.status == 200
    except OSError:
        return False


@pytest.mark.parametrize("signal_name", ["SIGTERM", "SIGHUP", "SIGINT"])
def test_a_stopped_run_leaves_no_server_behind(signal_name, tmp_path):
    port = free_port()
    # Without REDIS_URL, run starts a Redis server of its own, which must stop too. It migrates and serves a
    # database of its own, not step 03's db.sqlite3.
    without_redis = {name: value for name, value in os.environ.items() if name not in ("REDIS_URL", "REDIS_SERVER")}
    env = with_own_database(tmp_path, without_redis)
    log = tmp_path / "run.log"
    command = [sys.executable, "workshop.py", "run", "03", "--port", str(port)]
    with log.open("w") as output:
        # A session of its own: everything workshop.py starts can be found by it, whatever process group it is in.
        workshop = subprocess.Popen(command, cwd=ROOT, env=env, stdout=output, stderr=output, start_new_session=True)
    try:
        wait_until(lambda: serves(port) or workshop.poll() is not None, "run did not serve", 60)
        assert workshop.poll() is None, log.read_text()
        started = " | ".join(processes_in_session(workshop.pid).values())
        assert "runserver" in started and re.search(r"(redis|valkey)-server", started), started

        workshop.send_signal(getattr(signal, signal_name))

        workshop.wait(timeout=30)
        wait_until(lambda: not processes_in_session(workshop.pid), "what run started did not stop", 10)
        assert not serves(port)
    finally:
        for pid in processes_in_session(workshop.pid):
            os.kill(pid, signal.SIGKILL)
