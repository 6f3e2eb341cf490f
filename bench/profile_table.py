"""Where a server process spends its time: py-spy's samples of it, grouped by thread and by what the code does.

    py-spy record --pid PID --duration 10 --rate 250 --threads --format raw -o profile.txt
    .venv/bin/python bench/profile_table.py profile.txt [profile.txt ...]

Each sample is a thread's stack at one moment. It counts for its thread (the event loop, or the thread the database
work runs in) and for the group of its innermost frame, the code that was running: the first rule below it matches.
Several files are added up, for a table of several runs.
"""

from __future__ import annotations

import collections
import re
import sys
from pathlib import Path

FRAME_FILE = re.compile(r"\((?P<path>[^()]*?):\d+\)$")
# (thread, what the innermost frame's file path may contain, what its function's name contains, the group): the first
# rule whose thread matches, whose path holds one of its fragments, and whose function holds its text, wins.
RULES = [
    ("database thread", ("django/db/backends/sqlite3/base.py",), "execute", "SQLite running the statements"),
    ("database thread", ("django/db/backends/",), "_commit", "SQLite committing"),
    ("database thread", ("django/",), "", "Django building the queries and the model objects"),
    ("database thread", ("",), "", "the thread pool and asgiref"),
    ("event loop", ("asyncio/selector_events.py",), "write", "writing to sockets (asyncio's transports)"),
    ("event loop", ("asyncio/selector_events.py",), "read", "reading from sockets"),
    ("event loop", ("selectors.py",), "", "epoll: waiting for sockets, registering them"),
    ("event loop", ("websockets/extensions/permessage_deflate.py",), "", "compressing frames (permessage-deflate)"),
    ("event loop", ("websockets/", "uvicorn/"), "", "the WebSocket protocol (websockets, uvicorn)"),
    (
        "event loop",
        ("channels_redis/", "redis/", "msgpack/"),
        "",
        "the channel layer (channels_redis, redis-py, msgpack)",
    ),
    ("event loop", ("channels/", "asgiref/"), "", "Channels' consumers and their dispatch"),
    ("event loop", ("chat/",), "", "the chat's own code"),
    ("event loop", ("json/",), "", "JSON"),
    ("event loop", ("asyncio/",), "", "asyncio: tasks, futures, callbacks"),
    ("event loop", ("",), "", "everything else"),
]


def thread_of(stack: list[str]) -> str:
    """The database work runs in a thread of a ThreadPoolExecutor; the event loop in the main thread."""
    return "database thread" if "ThreadPoolExecutor" in stack[0] else "event loop"


def group_of(thread: str, frame: str) -> str:
    match = FRAME_FILE.search(frame)
    path, function = (match["path"], frame[: match.start()]) if match else ("", frame)
    return next(
        group
        for rule_thread, in_paths, in_function, group in RULES
        if rule_thread == thread and any(part in f"/{path}" for part in in_paths) and in_function in function
    )


def samples(lines: list[str]) -> collections.Counter:
    """Samples by (thread, group), from py-spy's raw format: a stack's frames joined by ';', then a count."""
    counts: collections.Counter = collections.Counter()
    for line in lines:
        stack, _, count = line.rstrip("\n").rpartition(" ")
        if stack:
            frames = stack.split(";")
            thread = thread_of(frames)
            counts[thread, group_of(thread, frames[-1])] += int(count)
    return counts


def table(counts: collections.Counter) -> str:
    total = sum(counts.values())
    threads: collections.Counter = collections.Counter()
    for (thread, _), count in counts.items():
        threads[thread] += count
    rows = ["| thread | what runs | share of samples |", "| --- | --- | --- |"]
    for thread, in_thread in threads.most_common():
        rows.append(f"| **{thread}** | | **{in_thread / total:.0%}** |")
        for (group_thread, group), count in counts.most_common():
            if group_thread == thread:
                rows.append(f"| | {group} | {count / total:.1%} |")
    return "\n".join(rows)


def main(argv: list[str] | None = None) -> int:
    paths = sys.argv[1:] if argv is None else argv
    if not paths:
        print(__doc__)
        return 2
    counts: collections.Counter = collections.Counter()
    for path in paths:
        counts += samples(Path(path).read_text(encoding="utf-8").splitlines())
    print(f"{sum(counts.values()):,} samples from {len(paths)} file(s)")
    print(table(counts))
    return 0


if __name__ == "__main__":
    sys.exit(main())
