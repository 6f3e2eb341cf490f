"""A throwaway PostgreSQL cluster for the tests of steps 07 and 08 marked `database`, or a DATABASE_URL already set."""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import NamedTuple

from tooling.config import WorkshopError
from tooling.processes import child_process, free_port, wait_until

# The steps whose settings read DATABASE_URL run the tests marked `database` (saving and numbering messages) a second
# time, on a throwaway PostgreSQL cluster: initdb and postgres from PATH, else from Debian's versioned folders.
USES_POSTGRESQL = re.compile(r"\bDATABASE_URL\b")
ON_POSTGRESQL = " on PostgreSQL"
POSTGRESQL_TESTS = ["-m", "database"]
POSTGRESQL_FOLDERS = [
    "/usr/lib/postgresql/*/bin",
    "/opt/homebrew/opt/postgresql*/bin",
    "/usr/local/opt/postgresql*/bin",
]
POSTGRESQL_FIXES = {
    "linux": "sudo apt-get install postgresql (Debian, Ubuntu), or your distribution's package",
    "darwin": "brew install postgresql",
    "win32": "install PostgreSQL from postgresql.org and put its bin folder on PATH",
}
# PostgreSQL refuses to run as root; then the cluster belongs to this user instead.
UNPRIVILEGED_USER = "nobody"


def uses_postgresql(folder: Path) -> bool:
    settings = folder / "mysite" / "settings.py"
    return settings.exists() and bool(USES_POSTGRESQL.search(settings.read_text(encoding="utf-8")))


class PostgreSQL(NamedTuple):
    initdb: str
    postgres: str


def natural_key(text: str) -> list:
    return [int(part) if part.isdigit() else part for part in re.split(r"(\d+)", text)]


def find_postgresql() -> PostgreSQL | None:
    """initdb and postgres from one folder: PATH's, else the newest of the folders packages install them in."""
    folders = [Path(found).resolve().parent for found in [shutil.which("initdb")] if found]
    for pattern in POSTGRESQL_FOLDERS:
        folders += sorted(Path("/").glob(pattern.lstrip("/")), key=lambda path: natural_key(str(path)), reverse=True)
    suffix = ".exe" if os.name == "nt" else ""
    for folder in folders:
        initdb, postgres = folder / f"initdb{suffix}", folder / f"postgres{suffix}"
        if initdb.is_file() and postgres.is_file():
            return PostgreSQL(str(initdb), str(postgres))
    return None


def postgresql_missing() -> str:
    fix = POSTGRESQL_FIXES.get(sys.platform, POSTGRESQL_FIXES["linux"])
    return (
        "the tests marked `database` were not run on PostgreSQL: no initdb and postgres were found on PATH or in "
        f"PostgreSQL's usual folders. Install the server: {fix}."
    )


def wait_for_postgresql(process: subprocess.Popen, log: Path, seconds: float = 30) -> None:
    def ready() -> bool:
        said = log.read_text(errors="replace") if log.exists() else ""
        if process.poll() is not None:
            raise WorkshopError(f"PostgreSQL stopped as it started:\n{said}")
        return "database system is ready to accept connections" in said

    wait_until(ready, "PostgreSQL was not ready", seconds, WorkshopError)


@contextlib.contextmanager
def postgresql_environment(env: dict[str, str], needed: bool, quiet: bool = False):
    """env with DATABASE_URL set to a throwaway PostgreSQL cluster when needed, stopped and deleted afterwards.

    A DATABASE_URL that is already set is used as it is. The cluster trusts local connections, listens on
    127.0.0.1 only, never syncs to disk, and, when workshop.py runs as root, runs as an unprivileged user.
    """
    if not needed or env.get("DATABASE_URL"):
        yield env
        return
    server = find_postgresql()
    if server is None:
        raise WorkshopError(postgresql_missing())
    as_user = []
    if hasattr(os, "geteuid") and os.geteuid() == 0:
        if not shutil.which("runuser"):
            raise WorkshopError(
                f"PostgreSQL does not run as root, and there is no runuser to run it as {UNPRIVILEGED_USER}."
            )
        as_user = ["runuser", "-u", UNPRIVILEGED_USER, "--"]
    port = free_port()
    with tempfile.TemporaryDirectory() as scratch:
        data, log = Path(scratch) / "data", Path(scratch) / "postgres.log"
        if as_user:
            shutil.chown(scratch, UNPRIVILEGED_USER)
        initdb = [server.initdb, "-D", str(data), "-U", "postgres", "--auth=trust", "-E", "UTF8", "--no-locale"]
        made = subprocess.run([*as_user, *initdb, "--no-sync"], capture_output=True, text=True)
        if made.returncode:
            raise WorkshopError(f"initdb could not make a throwaway PostgreSQL cluster:\n{made.stdout}{made.stderr}")
        options = ["-D", str(data), "-p", str(port), "-k", scratch, "-c", "listen_addresses=127.0.0.1"]
        options += ["-c", "fsync=off", "-c", "synchronous_commit=off", "-c", "full_page_writes=off"]
        with (
            log.open("wb") as sink,
            child_process(
                [*as_user, server.postgres, *options], cwd=scratch, stdout=sink, stderr=subprocess.STDOUT
            ) as process,
        ):
            wait_for_postgresql(process, log)
            if not quiet:
                print(f"workshop: started PostgreSQL on port {port} for this command", flush=True)
            yield {**env, "DATABASE_URL": f"postgres://postgres@127.0.0.1:{port}/chat"}
