"""How many messages a second the last step's saver saves, by batch size: the case for saving in batches.

    .venv/bin/python bench/saves.py [--batches 1,10,100] [--seconds 3] [--busy] [--switch-interval S]

Each run saves batches of N messages into a new database with the last step's own `save_batch`, one batch after
another, for the given seconds, and reports messages and transactions a second. The database is a SQLite file in a
temporary folder, or the PostgreSQL database DATABASE_URL names (its chat tables are emptied first: never point it at
one that matters). With --busy, another thread of the process runs Python without pause meanwhile, as an event loop with
more to do than it can has: the database thread then has to win the interpreter lock back after every query.
--switch-interval sets how long the busy thread may keep the lock from it (sys.setswitchinterval; 0.005 by default).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import tempfile
import threading
import time
from pathlib import Path
from types import SimpleNamespace

ROOT = Path(__file__).resolve().parent.parent
LAST_STEP = sorted(step["slug"] for step in json.loads((ROOT / "steps.json").read_text(encoding="utf-8"))["steps"])[-1]
ROOMS = 8


def set_up_django(folder: Path) -> None:
    sys.path.insert(0, str(ROOT / "steps" / LAST_STEP))
    settings = folder / "saves_settings.py"
    settings.write_text(
        "from mysite.settings import *  # noqa: F403\n"
        "import os\n"
        "if not os.environ.get('DATABASE_URL'):\n"
        f"    DATABASES = {{'default': {{**DATABASES['default'], 'NAME': {str(folder / 'saves.sqlite3')!r}}}}}\n",
        encoding="utf-8",
    )
    sys.path.insert(0, str(folder))
    os.environ["DJANGO_SETTINGS_MODULE"] = "saves_settings"
    import django
    from django.core.management import call_command

    django.setup()
    call_command("migrate", verbosity=0)


def senders():
    """Stand-ins for the consumers of ROOMS rooms: what save_batch reads of a socket."""
    from django.contrib.auth import get_user_model
    from django.db import connection

    from chat.models import Message, Room

    Message.objects.all().delete()
    Room.objects.all().delete()
    user = get_user_model().objects.get_or_create(username="bench-saves")[0]
    rooms = [Room.objects.create(name=f"bench-saves-{number}") for number in range(ROOMS)]
    # This thread is not used again: give its connection back to PostgreSQL's pool, which has few.
    connection.close()
    return [SimpleNamespace(user=user, room=room, room_group_name=f"chat_{room.name}") for room in rooms]


async def save_for(seconds: float, size: int, consumers: list) -> tuple[int, int]:
    from chat.saver import Taken, save_batch

    saved = transactions = 0
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        batch = [
            Taken(consumers[number % ROOMS], f"message {saved + number}", None, time.time(), None)
            for number in range(size)
        ]
        await save_batch(batch)
        saved += size
        transactions += 1
    return saved, transactions


def keep_busy(until: threading.Event) -> None:
    while not until.is_set():
        sum(range(1000))


async def measure(seconds: float, size: int, busy: bool) -> tuple[float, float]:
    consumers = await asyncio.to_thread(senders)
    stop = threading.Event()
    if busy:
        # Python that never waits: what the database thread competes with in a busy server's event loop.
        loop_thread = asyncio.get_running_loop().run_in_executor(None, keep_busy, stop)
    started = time.monotonic()
    try:
        saved, transactions = await save_for(seconds, size, consumers)
    finally:
        stop.set()
        if busy:
            await loop_thread
    elapsed = time.monotonic() - started
    return saved / elapsed, transactions / elapsed


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="saves.py", description=__doc__.split("\n\n")[0])
    parser.add_argument("--batches", default="1,10,100", metavar="N,N", help="batch sizes (default: 1,10,100)")
    parser.add_argument("--seconds", type=float, default=3, metavar="S", help="per batch size (default: 3)")
    parser.add_argument("--busy", action="store_true", help="keep another thread busy running Python meanwhile")
    parser.add_argument("--switch-interval", type=float, metavar="S", help="sys.setswitchinterval (default: 0.005)")
    args = parser.parse_args(argv)
    if args.switch_interval:
        sys.setswitchinterval(args.switch_interval)
    sizes = [int(size) for size in args.batches.split(",")]
    with tempfile.TemporaryDirectory(prefix="bench-saves-") as folder:
        set_up_django(Path(folder))
        from django.db import connection

        busy = ", another thread busy" if args.busy else ""
        busy += f", switch interval {sys.getswitchinterval() * 1000:g} ms"
        print(f"saves: step {LAST_STEP}, {connection.vendor}, {ROOMS} rooms{busy}")
        print("| batch | messages/s | transactions/s |\n| --- | --- | --- |")
        for size in sizes:
            messages, transactions = asyncio.run(measure(args.seconds, size, args.busy))
            print(f"| {size} | {messages:,.0f} | {transactions:,.0f} |", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
