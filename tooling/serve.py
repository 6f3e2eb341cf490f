"""The run and bench commands: a step served at a local address, or loaded by the benchmark."""

from __future__ import annotations

import os
import socket
import subprocess
from pathlib import Path

from tooling import venv
from tooling.config import ROOT, WorkshopError
from tooling.processes import HOST, run_to_the_end
from tooling.redis_server import redis_environment
from tooling.words import command_line, shown


def run(project: Path, port: int, needs_redis: bool, demo_users: bool) -> int:
    """Migrate and serve the Django project in folder `project`, with a Redis of its own if it needs one; first create
    the users its chapter logs in as, when it has a login."""
    refuse_a_port_in_use(port)
    python = str(venv.ensure_venv())
    name = shown(project)
    if subprocess.run([python, "manage.py", "migrate", "--noinput", "-v", "0"], cwd=project).returncode:
        raise WorkshopError(f"`manage.py migrate` failed in {name} (see above).")
    with redis_environment(python, needs_redis) as env:
        if demo_users:  # with Redis running: saving a user tells the user's open sockets, from step 06 on
            subprocess.run([python, "manage.py", "create_demo_users"], cwd=project, env=env)
        print(f"\nworkshop: serving {name} at http://127.0.0.1:{port}/chat/ (Ctrl+C stops it)\n", flush=True)
        return run_to_the_end([python, "manage.py", "runserver", f"127.0.0.1:{port}"], cwd=project, env=env)


def refuse_a_port_in_use(port: int) -> None:
    """runserver would only print that it cannot listen, and then go on running with nothing served."""
    with socket.socket() as probe:
        if os.name != "nt":  # as servers do, so that the connections of a server just stopped do not count
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((HOST, port))
        except OSError:
            raise WorkshopError(
                f"port {port} is in use, most often by the server of a step you ran before, which the browser then "
                f"talks to: stop it with Ctrl+C in its terminal, or serve on another port "
                f"(`make run ... PORT={port + 1}`, `{command_line('run', '...', '--port', str(port + 1))}`)."
            ) from None


def bench(argv: list[str]) -> int:
    """Run bench/bench.py with .venv's Python and a throwaway Redis, passing on the arguments after `bench`."""
    python = str(venv.ensure_venv())
    arguments = argv[argv.index("bench") + 1 :]
    with redis_environment(python, True) as env:
        return run_to_the_end([python, str(ROOT / "bench" / "bench.py"), *arguments], env=env)
