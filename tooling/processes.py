"""Child processes: starting and stopping them with what they started, waiting with a deadline, free local ports."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import socket
import subprocess
import time
from collections.abc import Callable
from typing import TypeVar

# Where the servers the tooling starts listen, and where it looks for free ports.
HOST = "127.0.0.1"
# What else stops workshop.py besides Ctrl+C: an IDE's stop button (SIGTERM), a closed terminal (SIGHUP), Ctrl+Break
# on Windows, which has neither of the others.
STOP_SIGNALS = [getattr(signal, name) for name in ("SIGTERM", "SIGHUP", "SIGBREAK") if hasattr(signal, name)]
# On Linux and macOS each child runs in a process group of its own, so that stopping it reaches what it started too
# (runserver's autoreloader serves from a second process; a suite's tests start servers). Windows has no such
# groups to signal: taskkill /T stops a process tree there.
OWN_PROCESS_GROUP = {} if os.name == "nt" else {"process_group": 0}

Found = TypeVar("Found")


def timed_out(what: str, seconds: float) -> str:
    return f"{what} within {seconds:g} seconds."


def wait_until(
    condition: Callable[[], Found], what: str, seconds: float, error: type[Exception] = TimeoutError
) -> Found:
    """condition()'s first true value, asked every 0.05 s; `error` if none came within seconds.

    what: how the failure reads before "within N seconds.", e.g. "nginx did not listen on port 8443".
    """
    deadline = time.monotonic() + seconds
    while not (found := condition()):
        if time.monotonic() > deadline:
            raise error(timed_out(what, seconds))
        time.sleep(0.05)
    return found


async def wait_until_async(
    condition: Callable[[], Found], what: str, seconds: float, error: type[Exception] = TimeoutError
) -> Found:
    """wait_until for a coroutine: the event loop runs on between the questions."""
    deadline = time.monotonic() + seconds
    while not (found := condition()):
        if time.monotonic() > deadline:
            raise error(timed_out(what, seconds))
        await asyncio.sleep(0.05)
    return found


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind((HOST, 0))
        return probe.getsockname()[1]


def free_ports(count: int) -> list[int]:
    ports: list[int] = []
    while len(ports) < count:
        port = free_port()
        if port not in ports:
            ports.append(port)
    return ports


def accepts_connections(port: int) -> bool:
    with contextlib.suppress(OSError), socket.create_connection((HOST, port), timeout=0.5):
        return True
    return False


def stop_like_ctrl_c(*signals: int) -> None:
    """Turn these signals into KeyboardInterrupt, so that the servers workshop.py started are stopped on the way out.

    Left alone, SIGTERM and SIGHUP end Python at once and the servers keep running, holding their ports. Once one
    has arrived, further ones are ignored, so that a second Ctrl+C cannot cut the stopping short.
    """

    def stop(signal_number: int, frame: object) -> None:
        for each in (signal.SIGINT, *signals):
            signal.signal(each, signal.SIG_IGN)
        raise KeyboardInterrupt

    for each in (signal.SIGINT, *signals):
        signal.signal(each, stop)


def process_group_alive(pid: int) -> bool:
    try:
        os.killpg(pid, 0)
    except ProcessLookupError:
        return False
    return True


def process_group_ended(process: subprocess.Popen, seconds: float) -> bool:
    deadline = time.monotonic() + seconds
    with contextlib.suppress(subprocess.TimeoutExpired):
        process.wait(timeout=seconds)
    what = f"process group {process.pid} did not end"
    with contextlib.suppress(TimeoutError):
        return wait_until(lambda: not process_group_alive(process.pid), what, max(0, deadline - time.monotonic()))
    return False


def stop_process_tree(process: subprocess.Popen, seconds: float = 10) -> None:
    """Stop a process started in a group of its own (see child_process) and everything it started."""
    if os.name == "nt":
        if process.poll() is None:
            subprocess.run(["taskkill", "/F", "/T", "/PID", str(process.pid)], capture_output=True)
        process.wait()
        return
    # SIGINT first, as Ctrl+C in a terminal would send it: pytest then runs its teardown, which stops the servers
    # the tests started, and servers shut down cleanly. Whatever is still there after that is killed.
    for signal_number in (signal.SIGINT, signal.SIGKILL):
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal_number)
        if process_group_ended(process, seconds):
            return


def stop_process(process: subprocess.Popen, seconds: float = 10) -> bool:
    """Stop one server as systemd or an IDE would, SIGTERM, and kill it if it has not ended within seconds.

    Whether it ended by itself. For a process that shares this one's group, where stop_process_tree cannot be used.
    """
    if process.poll() is None:
        process.terminate()
    try:
        process.wait(timeout=seconds)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()
        return False
    return True


@contextlib.contextmanager
def child_process(command: list[str], **options):
    """A process started with Popen's options, stopped with everything it started when the block ends."""
    process = subprocess.Popen(command, **options, **OWN_PROCESS_GROUP)
    try:
        yield process
    finally:
        stop_process_tree(process)


def run_to_the_end(command: list[str], **options) -> int:
    """Run command and return its exit code; stop it and what it started if workshop.py is stopped meanwhile."""
    with child_process(command, **options) as process:
        return process.wait()
