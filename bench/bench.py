"""Load a step's chat server with many WebSocket clients, and report what reached whom and how fast.

    python workshop.py bench [STEP] [--rooms R] [--clients C] [--messages M | --seconds S] [--rate HZ]
                             [--sweep HZ,HZ,...] [--processes N] [--server daphne|uvicorn] [--flood [N]] [--idle S]
                             [--plot FILE.svg|FILE.png] [--json FILE]

STEP is the last step unless given. `workshop.py bench` runs this file with the virtual environment's Python and a
throwaway Redis (REDIS_URL).
Each target is served on 127.0.0.1, one after the other, and gets the same load. A step is served in a daphne
process of its own (or uvicorn's, with --server uvicorn, run as the deployment runs it), or in N of them with
--processes N, sharing Redis and the database:

  ours      the step as it is, with its own settings (and a throwaway database)
  official  the same step with the channel layer set up as the Channels tutorial does: the Redis host, nothing else
  plain     bench/plain_server.py: the websockets library alone, rooms by path, the single-process ceiling

R rooms of C clients connect at once; then every client sends M messages at HZ per second (or sends for S seconds),
each message saying which run it belongs to, who sent it, its number and when it was due, and every client counts
what it receives.
Every message should reach each of the C sockets in its room (the sender's included) exactly once and in order.
From step 05 on the chat refuses anonymous sockets, so each client is a user of its own with a real session.
From step 07 on the server sends messages in batches, {"messages": [...]}, each counted as its own message. From step 08
on each client gives every message an id: the server acknowledges the message by echoing it with the id, or names the
id when it refuses the message or could not save it. A message whose sender was told so is counted as refused or not
saved, not as lost; one the server took and then did not deliver to some socket of its room is lost.
From step 07 on a busy server says how long to wait before sending again (retry_after), and each client does as the page
does: the messages that fall due meanwhile are held, not sent, and counted as held.

With --idle S the sockets stay silent for S seconds between connecting and sending. With --flood one more
client of room 0 sends as fast as it can while the load runs; its messages are counted apart from the load's.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import importlib.util
import json
import math
import os
import random
import re
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

HERE = Path(__file__).resolve().parent
# Run as a file, `python bench/bench.py`, this folder is on Python's path instead of the repository's folder above it.
sys.path.insert(0, str(HERE.parent))

from tooling.chromium import CHROMIUM_FLAGS, find_chromium  # noqa: E402
from tooling.config import STEPS, STEPS_DIR, STEPS_WITH_LOGIN, WorkshopError, resolve_step  # noqa: E402
from tooling.processes import HOST, accepts_connections, free_ports, stop_process, wait_until  # noqa: E402

# The sweep's bar: a rate passes when nothing is lost, refused, left unsaved or duplicated, no socket fails, and p99
# stays under this.
P99_LIMIT_MS = 250
TARGETS = ("ours", "official", "plain")
# What serves a step target: daphne, the server of runserver, or uvicorn, the deployment's, as the deployment runs it.
SERVERS = ("daphne", "uvicorn")
# From this step on the server takes an id with each message, echoes it to the sender once the message is saved, and
# names the messages it refused or did not save by it.
FIRST_STEP_WITH_CLIENT_IDS = 8
# Bounds, so that a typo cannot start an hour-long run or exhaust the machine's sockets.
MAX_SOCKETS = 1000
MAX_SECONDS = 120
MAX_PROCESSES = 16
MAX_FLOOD = 50_000
MAX_IDLE = 600
DEFAULT_FLOOD = 5_000
DEFAULT_MESSAGES = 40
DEFAULT_SWEEP_SECONDS = 8
# A PNG plot is the SVG drawn by headless Chromium (see tooling/chromium.py).
NO_BROWSER = (
    "no browser to draw a PNG: sudo apt-get install chromium-headless-shell, "
    "or python -m playwright install --only-shell chromium"
)
COLUMNS = [
    "target",
    "rooms × clients",
    "offered/s",
    "delivered/s",
    "p50 ms",
    "p99 ms",
    "lost",
    "acknowledged",
    "refused",
    "held",
    "not saved",
    "duplicated",
    "out of order",
    "connect errors",
    "closed early",
    "RSS growth MB",
]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The benchmark's options; workshop.py's `bench` command has the same ones, so it can pass them on."""
    parser.add_argument(
        "step", nargs="?", default=STEPS[-1], help=f"a step from 03 on (default: the last, {STEPS[-1]})"
    )
    parser.add_argument("--rooms", type=int, default=8, metavar="R", help="rooms (default: 8)")
    parser.add_argument("--clients", type=int, default=20, metavar="C", help="sockets in each room (default: 20)")
    parser.add_argument(
        "--messages",
        type=int,
        metavar="M",
        help=f"messages per client (default: {DEFAULT_MESSAGES}, or as many as --seconds takes at the rate)",
    )
    parser.add_argument(
        "--rate", type=float, default=2.5, metavar="HZ", help="messages per second per client (default: 2.5)"
    )
    parser.add_argument(
        "--sweep",
        metavar="HZ,HZ",
        help="run at each of these rates per client instead of --rate, for --seconds each; a target stops at its "
        f"first rate that loses a message or has p99 over {P99_LIMIT_MS} ms",
    )
    parser.add_argument(
        "--seconds",
        type=float,
        metavar="S",
        help=f"send for S seconds at the rate instead of M messages; the length of each sweep run "
        f"(default: {DEFAULT_SWEEP_SECONDS}); at most {MAX_SECONDS}",
    )
    parser.add_argument(
        "--targets", default=",".join(TARGETS), metavar="T,T", help=f"which servers (default: {','.join(TARGETS)})"
    )
    parser.add_argument(
        "--processes",
        type=int,
        default=1,
        metavar="N",
        help="serve each step target in N server processes sharing Redis and the database; client k connects to "
        "process k %% N, so every room spans them all (default: 1; plain is always one process)",
    )
    parser.add_argument(
        "--server",
        choices=SERVERS,
        default=SERVERS[0],
        help="the server of the step targets (default: daphne); plain is the websockets library either way",
    )
    parser.add_argument(
        "--flood",
        type=int,
        nargs="?",
        const=DEFAULT_FLOOD,
        default=0,
        metavar="N",
        help=f"meanwhile, one more client in room 0 sends N messages (default: {DEFAULT_FLOOD:,}) as fast as it can; "
        "its messages are left out of the table, and what became of it is reported below it",
    )
    parser.add_argument(
        "--idle",
        type=float,
        default=0,
        metavar="S",
        help="connect, stay silent for S seconds, then send the load on the same sockets; reports how many were "
        "still open (a socket closed meanwhile also counts as closed early)",
    )
    parser.add_argument(
        "--plot",
        metavar="FILE",
        help="with --sweep: draw p99 against offered load, as an SVG file, or as a PNG if FILE ends in .png "
        "(drawn by headless Chromium)",
    )
    parser.add_argument("--json", metavar="FILE", help="also write every result as JSON")


@dataclass
class Load:
    rooms: int
    clients: int
    messages: int
    rate: float
    # Messages one more client of room 0 sends as fast as it can meanwhile; 0 for none.
    flood: int = 0
    # Seconds the sockets stay connected and silent before the sending starts.
    idle: float = 0

    @property
    def offered(self) -> float:
        """Deliveries per second asked for: every message goes to every socket of its room."""
        return self.rooms * self.clients * self.rate * self.clients

    def check(self) -> None:
        if min(self.rooms, self.clients, self.messages) < 1 or self.rate <= 0:
            raise SystemExit("bench: rooms, clients, messages and rate must all be positive")
        if self.rooms * self.clients > MAX_SOCKETS:
            raise SystemExit(f"bench: at most {MAX_SOCKETS} sockets (rooms × clients)")
        if self.messages / self.rate > MAX_SECONDS:
            raise SystemExit(f"bench: sending may last at most {MAX_SECONDS} seconds (messages / rate)")
        if not 0 <= self.flood <= MAX_FLOOD:
            raise SystemExit(f"bench: --flood takes up to {MAX_FLOOD:,} messages")
        if not 0 <= self.idle <= MAX_IDLE:
            raise SystemExit(f"bench: --idle takes up to {MAX_IDLE} seconds")


@dataclass
class Flood:
    """What became of the client that flooded room 0."""

    messages: int
    sent: int
    connect_error: str | None
    # None while the server left it open until the end of the run.
    close_code: int | None
    error_text: str | None
    # Deliveries of its messages to the room's other sockets, which are counted apart from the load's.
    delivered_to_others: int
    others: int
    # Its messages the server acknowledged (None where it does not), refused, and said it did not save.
    acknowledged: int | None = None
    refused: int = 0
    not_saved: int = 0

    def outcome(self) -> str:
        if self.connect_error:
            return f"the flooding client could not connect ({self.connect_error})"
        answers = ""
        if self.acknowledged is not None:
            answers = f" ({self.acknowledged:,} acknowledged, {self.refused:,} refused, {self.not_saved:,} not saved)"
        return (
            f"flood: {self.sent:,} of {self.messages:,} messages sent into room 0{answers}, {self.ending()}; "
            f"{self.delivered_to_others:,} of {self.sent * self.others:,} deliveries of them reached the room's "
            f"{self.others} other sockets before the run ended"
        )

    def ending(self) -> str:
        if self.close_code is None:
            return "not closed" + (f", though told {self.error_text!r}" if self.error_text else "")
        told = f" after the error {self.error_text!r}" if self.error_text else ""
        return f"closed by the server with code {self.close_code}{told}"


@dataclass
class Result:
    target: str
    processes: int
    rooms: int
    clients: int
    messages: int
    rate: float
    offered: float
    delivered_per_second: float
    p50_ms: float | None
    p99_ms: float | None
    sent: int
    expected: int
    delivered: int
    # Messages sent and not told of that did not reach a socket of their room, counted once for each such socket.
    lost: int
    duplicated: int
    out_of_order: int
    connect_errors: int
    closed_early: int
    connect_seconds: float
    logged_in: bool
    # Frames of messages that are not this run's, such as the history a step sends on connect.
    earlier_messages: int = 0
    flood: Flood | None = None
    idle_seconds: float = 0
    # Sockets still open after the idle time, of the `clients` × `rooms` - `connect_errors` that connected.
    open_after_idle: int | None = None
    errors: dict[str, int] = field(default_factory=dict)
    # What served a step target; None for plain.
    server: str | None = None
    # From step 08 on: messages echoed to their sender with its id (None before), refused at once, and named in an
    # error as not saved. The last two were told to their sender, so they are not lost, but they were not delivered.
    acknowledged: int | None = None
    refused: int = 0
    not_saved: int = 0
    # Messages the clients did not send because the server had asked them to wait: neither expected nor lost.
    held: int = 0
    # How much the server's processes grew, together, from before the sockets connected until the deliveries stopped;
    # None where /proc does not say.
    rss_growth_mb: float | None = None
    # How late the clients sent their messages, p99: what of the latency is the clients' own.
    send_lag_p99_ms: float | None = None

    @property
    def passes(self) -> bool:
        return (
            self.lost == 0
            and self.refused == 0
            and self.held == 0
            and self.not_saved == 0
            and self.duplicated == 0
            and self.connect_errors == 0
            and self.closed_early == 0
            and self.p99_ms is not None
            and self.p99_ms < P99_LIMIT_MS
        )

    @property
    def label(self) -> str:
        served_by = f" ({self.server})" if self.server else ""
        return f"{self.target}{served_by}" + ("" if self.processes == 1 else f" ×{self.processes}")

    def row(self) -> list[str]:
        return [
            self.label,
            f"{self.rooms} × {self.clients}",
            f"{self.offered:,.0f}",
            f"{self.delivered_per_second:,.0f}",
            milliseconds(self.p50_ms),
            milliseconds(self.p99_ms),
            f"{self.lost:,}",
            "" if self.acknowledged is None else f"{self.acknowledged:,}",
            f"{self.refused:,}",
            f"{self.held:,}",
            f"{self.not_saved:,}",
            f"{self.duplicated:,}",
            f"{self.out_of_order:,}",
            f"{self.connect_errors:,}",
            f"{self.closed_early:,}",
            "" if self.rss_growth_mb is None else f"{self.rss_growth_mb:+,.1f}",
        ]


def milliseconds(value: float | None) -> str:
    return "-" if value is None else f"{value:,.0f}" if value >= 10 else f"{value:.1f}"


class Client:
    """One socket: sends its share of messages and counts every message it receives, by sender and number.

    A client is in one room, so the order it sees is per room and sender, whichever process either is served by.
    """

    def __init__(self, room: int, sender: int):
        self.room = room
        self.sender = sender
        self.websocket = None
        self.error: str | None = None
        self.closed_early = False
        self.sent = 0
        self.seen: dict[tuple[int, int], int] = {}
        self.highest: dict[int, int] = {}
        self.out_of_order = 0
        self.latencies: list[float] = []
        # How late the client itself sent each message: a busy client's lateness counts as latency too.
        self.send_lags: list[float] = []
        self.last_delivery = 0.0
        # Numbers of this client's messages that the server echoed with their client id, that it refused, and that it
        # said it did not save: the last two were told, so they are neither expected nor lost.
        self.acknowledged: set[int] = set()
        self.refused: set[int] = set()
        self.not_saved: set[int] = set()
        # The server asked the client to send nothing until then (retry_after); the messages due meanwhile are held.
        self.held_until = 0.0
        self.held = 0

    @property
    def told(self) -> set[int]:
        return self.refused | self.not_saved

    async def connect(self, url: str, origin: str, cookie: str | None) -> None:
        from websockets.asyncio.client import connect

        headers = {"Cookie": cookie} if cookie else None
        try:
            self.websocket = await connect(
                url, origin=origin, additional_headers=headers, open_timeout=30, ping_interval=None, max_queue=None
            )
        except Exception as error:  # noqa: BLE001  (every kind of failure is counted, by name)
            self.error = type(error).__name__

    @property
    def is_open(self) -> bool:
        from websockets.protocol import State

        return self.websocket.state is State.OPEN

    async def receive(self, run: Run) -> None:
        from websockets.exceptions import ConnectionClosed

        with contextlib.suppress(ConnectionClosed):
            async for frame in self.websocket:
                self.take(frame, run, time.monotonic())
        if not run.closing:
            self.closed_early = True

    def take(self, frame: str | bytes, run: Run, now: float) -> None:
        """Count what one frame brings: a message, a batch of them, an error, or the start of the history."""
        try:
            data = json.loads(frame)
        except ValueError:
            run.count_error("not JSON")
            return
        if not isinstance(data, dict):
            run.count_error("not a JSON object")
        elif isinstance(data.get("messages"), list):
            # From step 07 on: a batch, each message as the earlier steps sent it in a frame of its own.
            for message in data["messages"]:
                self.take_message(message, run, now)
        elif "message" in data:
            self.take_message(data, run, now)
        elif "error" in data:
            if type(data.get("retry_after")) in (int, float):
                self.held_until = now + data["retry_after"]
            self.take_error(data, run)
        elif "history_after" not in data:  # the number of older messages the history leaves out
            run.count_error("unknown frame")

    def take_error(self, data: dict, run: Run) -> None:
        """An error frame: the refusal of one message, the names of some not saved, or a complaint about the socket."""
        refused, not_saved = data.get("refused"), data.get("not_saved")
        if refused is not None:
            self.add_told(self.refused, [refused], run)
        elif isinstance(not_saved, list):
            self.add_told(self.not_saved, not_saved, run)
        else:
            run.count_error("error frame")

    def add_told(self, into: set[int], client_ids: list, run: Run) -> None:
        for client_id in client_ids:
            number = client_id_number(client_id, run.label)
            if number is None:
                run.count_error("told about a message it did not send")
            else:
                into.add(number)

    def take_message(self, data: object, run: Run, now: float) -> None:
        text = data.get("message") if isinstance(data, dict) else None
        if not isinstance(text, str):
            run.count_error("message without text")
            return
        message = read_message(text, run.label)
        if message is None:
            run.earlier_messages += 1
            return
        sender, number, due = message
        run.frames += 1
        if data.get("author", username(sender)) != username(sender):
            run.count_error("sent under another user's name")
        if sender == self.sender and run.client_ids:
            if data.get("client_id") == client_id(run.label, number):
                self.acknowledged.add(number)
            else:
                run.count_error("echoed without its client id")
        if sender == run.flooder:
            run.flood_delivered += 1
            return
        key = (sender, number)
        self.seen[key] = self.seen.get(key, 0) + 1
        if self.seen[key] > 1:
            return
        if key[1] < self.highest.get(key[0], -1):
            self.out_of_order += 1
        self.highest[key[0]] = max(key[1], self.highest.get(key[0], -1))
        self.latencies.append(now - due)
        self.last_delivery = now
        run.delivered += 1

    async def send(self, load: Load, start: float, run: Run) -> None:
        from websockets.exceptions import ConnectionClosed

        interval = 1 / load.rate
        offset = random.uniform(0, interval)
        for number in range(load.messages):
            # Latency counts from when a message was due, so a client that falls behind shows up as latency.
            due = start + offset + number * interval
            await asyncio.sleep(max(0.0, due - time.monotonic()))
            if due < self.held_until:
                self.held += 1
                continue
            try:
                await self.websocket.send(message_frame(run, self.sender, number, due))
            except ConnectionClosed:
                return
            self.send_lags.append(time.monotonic() - due)
            self.sent += 1


class Flooder(Client):
    """One more socket in room 0 that sends as fast as it can, and notes how the server answers it."""

    def __init__(self, sender: int):
        super().__init__(0, sender)
        self.error_text: str | None = None
        self.close_code: int | None = None
        # Once the server has closed the socket, or the run has.
        self.ended = False

    async def receive(self, run: Run) -> None:
        from websockets.exceptions import ConnectionClosed

        with contextlib.suppress(ConnectionClosed):
            async for frame in self.websocket:
                self.take(frame, run, time.monotonic())
        if not run.closing:
            self.close_code = self.websocket.close_code
        self.ended = True

    def take_error(self, data: dict, run: Run) -> None:
        # Errors are what a flood is for: the first says what the server made of it, and none counts against the load.
        if isinstance(data.get("error"), str) and self.error_text is None:
            self.error_text = data["error"]
        if data.get("refused") is not None:
            self.add_told(self.refused, [data["refused"]], run)
        elif isinstance(data.get("not_saved"), list):
            self.add_told(self.not_saved, data["not_saved"], run)

    def take_message(self, data: object, run: Run, now: float) -> None:
        # Only the echoes of its own messages: the room's others are the load's, counted by the load's sockets.
        message = read_message(data.get("message", ""), run.label) if isinstance(data, dict) else None
        if message and message[0] == self.sender and data.get("client_id") == client_id(run.label, message[1]):
            self.acknowledged.add(message[1])

    def settled(self, load: Load, run: Run, others: int) -> bool:
        """Whether the server has dealt with the flood: closed the socket, or sent on or answered every message."""
        if self.websocket is None or self.ended:
            return True
        if run.client_ids:
            return self.sent == load.flood and len(self.acknowledged | self.told) >= load.flood
        return run.flood_delivered >= load.flood * others

    async def send(self, load: Load, start: float, run: Run) -> None:
        from websockets.exceptions import ConnectionClosed

        await asyncio.sleep(max(0.0, start - time.monotonic()))
        for number in range(load.flood):
            try:
                await self.websocket.send(message_frame(run, self.sender, number, time.monotonic()))
            except ConnectionClosed:
                return
            self.sent += 1
            # Without waiting for anything, but letting the other clients of this process send and receive.
            await asyncio.sleep(0)

    def report(self, load: Load, run: Run, others: int) -> Flood:
        return Flood(
            load.flood,
            self.sent,
            self.error,
            self.close_code,
            self.error_text,
            run.flood_delivered,
            others,
            acknowledged=len(self.acknowledged) if run.client_ids else None,
            refused=len(self.refused),
            not_saved=len(self.not_saved),
        )


def message_frame(run: Run, sender: int, number: int, due: float) -> str:
    """The frame a client sends: a chat message whose text says which run, sender and number it is, and when due;
    with an id the server acknowledges the message by, where it does."""
    frame: dict[str, str] = {"message": f"{run.label}:{sender}:{number}:{due:.6f}"}
    if run.client_ids:
        frame["client_id"] = client_id(run.label, number)
    return json.dumps(frame)


def client_id(label: str, number: int) -> str:
    """The id of a sender's message `number` in the run `label`: unique for the user, as the server requires, across
    the runs of a sweep, which share the database."""
    return f"{label}-{number}"


def client_id_number(value: object, label: str) -> int | None:
    """The number in the id of a message of the run `label`; None for any other id."""
    if not isinstance(value, str) or not value.startswith(f"{label}-") or not value[len(label) + 1 :].isdigit():
        return None
    return int(value[len(label) + 1 :])


def read_message(text: str, label: str) -> tuple[int, int, float] | None:
    """The sender, number and due time in a message of the run `label`; None for any other text."""
    parts = text.split(":")
    if len(parts) != 4 or parts[0] != label:
        return None
    return int(parts[1]), int(parts[2]), float(parts[3])


def username(sender: int) -> str:
    return f"bench-{sender}"


class Run:
    def __init__(self, label: str, flooder: int | None, client_ids: bool = False):
        self.label = label
        self.flooder = flooder
        # Whether each message carries an id, which the server acknowledges it by: from step 08 on.
        self.client_ids = client_ids
        # Frames of this run's messages that reached the load's clients, and of those, the ones the flooder sent.
        self.frames = 0
        self.flood_delivered = 0
        self.delivered = 0
        self.earlier_messages = 0
        self.closing = False
        self.errors: dict[str, int] = {}

    def count_error(self, kind: str) -> None:
        self.errors[kind] = self.errors.get(kind, 0) + 1


async def load_server(target: str, served: Served, load: Load, label: str) -> Result:
    """Connect, send, wait for the deliveries to stop, then count."""
    clients = [Client(room, room * load.clients + index) for room in range(load.rooms) for index in range(load.clients)]
    flooder = Flooder(len(clients)) if load.flood else None
    run = Run(label, flooder.sender if flooder else None, served.client_ids)
    sockets = [*clients, *([flooder] if flooder else [])]
    rss_before = served.rss_kib()
    started = time.monotonic()
    await asyncio.gather(
        *(client.connect(*served.address(client.sender, f"{label}-{client.room}")) for client in sockets)
    )
    connect_seconds = time.monotonic() - started
    connected = [client for client in clients if client.websocket is not None]
    for client in clients:
        if client.error:
            run.count_error(f"connect: {client.error}")
    open_sockets = [client for client in sockets if client.websocket is not None]
    receivers = [asyncio.create_task(client.receive(run)) for client in open_sockets]
    open_after_idle = None
    if load.idle:
        await asyncio.sleep(load.idle)
        open_after_idle = sum(client.is_open for client in connected)
    start = time.monotonic() + 0.5
    await asyncio.gather(*(client.send(load, start, run) for client in open_sockets))
    members = {room: sum(client.room == room for client in connected) for room in range(load.rooms)}

    def expected() -> int:
        return expected_deliveries(connected, members)

    flood_settled = (lambda: flooder.settled(load, run, members[0])) if flooder else (lambda: True)
    await wait_for_deliveries(run, expected, flood_settled)
    rss_after = served.rss_kib()
    run.closing = True
    await asyncio.gather(*(client.websocket.close() for client in open_sockets), return_exceptions=True)
    await asyncio.gather(*receivers, return_exceptions=True)

    latencies = sorted(latency for client in connected for latency in client.latencies)
    delivered = deliveries(connected)
    if delivered_though_told := sum(len(client.seen) for client in connected) - delivered:
        run.errors["delivered, though its sender was told it was not"] = delivered_though_told
    last = max((client.last_delivery for client in connected), default=start)
    return Result(
        target=target,
        server=served.server,
        processes=len(served.ports),
        rooms=load.rooms,
        clients=load.clients,
        messages=load.messages,
        rate=load.rate,
        offered=load.offered,
        delivered_per_second=delivered / max(last - start, 1 / load.rate * load.messages, 1e-9),
        p50_ms=percentile(latencies, 50),
        p99_ms=percentile(latencies, 99),
        sent=sum(client.sent for client in connected),
        expected=expected(),
        delivered=delivered,
        lost=expected() - delivered,
        acknowledged=sum(len(client.acknowledged) for client in connected) if run.client_ids else None,
        refused=sum(len(client.refused) for client in connected),
        not_saved=sum(len(client.not_saved) for client in connected),
        held=sum(client.held for client in connected),
        duplicated=sum(count - 1 for client in connected for count in client.seen.values()),
        out_of_order=sum(client.out_of_order for client in connected),
        connect_errors=len(clients) - len(connected),
        closed_early=sum(client.closed_early for client in connected),
        connect_seconds=connect_seconds,
        logged_in=bool(served.cookies),
        earlier_messages=run.earlier_messages,
        flood=flooder.report(load, run, members[0]) if flooder else None,
        idle_seconds=load.idle,
        open_after_idle=open_after_idle,
        errors=run.errors,
        rss_growth_mb=None if rss_before is None or rss_after is None else (rss_after - rss_before) / 1024,
        send_lag_p99_ms=percentile(sorted(lag for client in connected for lag in client.send_lags), 99),
    )


def expected_deliveries(clients: list[Client], members: dict[int, int]) -> int:
    """Every message sent, to every socket of its room; but for those the server told their sender it did not take."""
    return sum((client.sent - len(client.told)) * members[client.room] for client in clients)


def deliveries(clients: list[Client]) -> int:
    """The messages that reached each socket, once each however often they came, but for those told of."""
    told = {client.sender: client.told for client in clients}
    return sum(number not in told.get(sender, ()) for client in clients for sender, number in client.seen)


async def wait_for_deliveries(run: Run, expected: Callable[[], int], flood_settled: Callable[[], bool]) -> None:
    """Until everything arrived and the server has dealt with any flood, or nothing more arrived for 3 seconds (the
    flood's frames count as something).

    The load's messages may all arrive before the server has read as far into the flood as its limit: the flood's
    outcome is only known once the server has closed the flooding socket or sent its every message on.
    """
    last_count, last_change, deadline = -1, time.monotonic(), time.monotonic() + 30
    while (
        (run.delivered < expected() or not flood_settled())
        and time.monotonic() < deadline
        and time.monotonic() - last_change < 3
    ):
        if run.frames != last_count:
            last_count, last_change = run.frames, time.monotonic()
        await asyncio.sleep(0.05)


def percentile(values: list[float], percent: float) -> float | None:
    if not values:
        return None
    index = min(len(values) - 1, max(0, math.ceil(percent / 100 * len(values)) - 1))
    return values[index] * 1000


# The servers.


def settings_module(target: str, scratch: Path) -> str:
    """A settings module that imports the step's and changes only what this target needs."""
    name = f"bench_settings_{target}"
    lines = [
        '"""Generated by bench/bench.py for one run; the step\'s own settings are left as they are."""',
        "import os",
        "from mysite.settings import *  # noqa: F403",
        "from mysite.settings import DATABASES",
        "",
        "# A new SQLite file for each run; from step 07 on, a PostgreSQL database DATABASE_URL names is used as it is.",
        "if DATABASES['default']['ENGINE'].endswith('sqlite3'):",
        f"    DATABASES = {{'default': {{**DATABASES['default'], 'NAME': {str(scratch / f'{target}.sqlite3')!r}}}}}",
        "# Measured as a server runs it: without the debug pages' bookkeeping of every query.",
        "DEBUG = False",
        "# Without DEBUG, Django and the socket origin check accept only the hosts named here.",
        f"ALLOWED_HOSTS = [{HOST!r}]",
        "# The benchmark's users get random passwords that nobody types: a fast hasher makes hundreds of them quickly.",
        "PASSWORD_HASHERS = ['django.contrib.auth.hashers.MD5PasswordHasher']",
    ]
    if target == "official":
        lines.append(
            "CHANNEL_LAYERS = {'default': {'BACKEND': 'channels_redis.core.RedisChannelLayer', "
            "'CONFIG': {'hosts': [os.environ['REDIS_URL']]}}}"
        )
    (scratch / f"{name}.py").write_text("\n".join(lines) + "\n", encoding="utf-8")
    return name


LOG_IN = """
import json
import secrets

from django.conf import settings
from django.contrib.auth import get_user_model
from django.db import transaction
from django.test import Client

cookies = []
with transaction.atomic():
    for name in {usernames!r}:
        user, created = get_user_model().objects.get_or_create(username=name)
        if created:
            user.set_password(secrets.token_urlsafe())
            user.save()
        client = Client()
        client.force_login(user)
        cookies.append(f"{{settings.SESSION_COOKIE_NAME}}={{client.cookies[settings.SESSION_COOKIE_NAME].value}}")
print(json.dumps(cookies))
"""


def log_in(step: Path, env: dict[str, str], count: int) -> list[str]:
    """A user for each of `count` clients in the target's database, each with a new session; their Cookie headers."""
    snippet = LOG_IN.format(usernames=[username(sender) for sender in range(count)])
    command = [sys.executable, "manage.py", "shell", "-v", "0", "-c", snippet]
    finished = subprocess.run(command, cwd=step, env=env, capture_output=True, text=True)
    if finished.returncode:
        raise SystemExit(f"bench: could not log the clients in:\n{finished.stdout}{finished.stderr}")
    return json.loads(finished.stdout.strip().splitlines()[-1])


def needs_login(step: Path) -> bool:
    return step.name in STEPS_WITH_LOGIN


def acknowledges(step: Path) -> bool:
    return int(step.name.split("_")[0]) >= FIRST_STEP_WITH_CLIENT_IDS


@dataclass
class Served:
    """A target being served: a port and a log per process, and each client's Cookie header if the step needs one."""

    ports: list[int]
    logs: list[Path]
    cookies: list[str]
    # What serves a step target; None for plain.
    server: str | None = None
    # Whether the server acknowledges each message by the id its client gave it.
    client_ids: bool = False
    pids: list[int] = field(default_factory=list)

    def rss_kib(self) -> int | None:
        """The resident memory of the server's processes together, in KiB; None where a process's is unknown."""
        sizes = [resident_kib(pid) for pid in self.pids]
        return None if None in sizes else sum(sizes)

    def address(self, client: int, room: str) -> tuple[str, str, str | None]:
        """The URL, Origin and Cookie header client number `client` connects to `room` with, spread over processes."""
        port = self.ports[client % len(self.ports)]
        cookie = self.cookies[client] if self.cookies else None
        return f"ws://{HOST}:{port}/ws/chat/{room}/", f"http://{HOST}:{port}", cookie

    def log_sizes(self) -> list[int]:
        return [log.stat().st_size for log in self.logs]

    def errors_since(self, sizes: list[int]) -> dict[str, int]:
        found: dict[str, int] = {}
        for log, since in zip(self.logs, sizes, strict=True):
            for kind, count in server_errors(log, since).items():
                found[kind] = found.get(kind, 0) + count
        return found


@contextlib.contextmanager
def server(target: str, step: Path, scratch: Path, processes: int, users: int, server_name: str = "daphne"):
    """Serve a target on free ports of 127.0.0.1: a step in `processes` processes of `server_name` that share Redis
    and a database, with `users` logged-in users if the step needs them; plain in one process."""
    if target == "plain":
        command, cwd, env = [sys.executable, str(HERE / "plain_server.py")], HERE, dict(os.environ)
        processes, cookies, server_name = 1, [], None
    else:
        env = {
            **os.environ,
            "DJANGO_SETTINGS_MODULE": settings_module(target, scratch),
            "PYTHONPATH": os.pathsep.join([str(step), str(scratch)]),
        }
        migrate = [sys.executable, "manage.py", "migrate", "--noinput", "-v", "0"]
        if subprocess.run(migrate, cwd=step, env=env).returncode:
            where = "the database DATABASE_URL names" if os.environ.get("DATABASE_URL") else "a new SQLite file"
            raise SystemExit(f"bench: `manage.py migrate` of {step.name} failed on {where} (its error is above)")
        cookies = log_in(step, env, users) if needs_login(step) else []
        command, cwd = server_command(server_name), step
    ports = free_ports(processes)
    logs = [scratch / f"{target}-{port}.log" for port in ports]
    with contextlib.ExitStack() as stack:
        started = [
            stack.enter_context(running([*command, "--port", str(port)], cwd, env, log))
            for port, log in zip(ports, logs, strict=True)
        ]
        for port, log, process in zip(ports, logs, started, strict=True):
            wait_until_listening(target, port, process, log)
        pids = [process.pid for process in started]
        yield Served(ports, logs, cookies, server_name, target != "plain" and acknowledges(step), pids)


def resident_kib(pid: int) -> int | None:
    """A process's resident memory (VmRSS) in KiB, as Linux's /proc tells it; None elsewhere."""
    try:
        status = Path(f"/proc/{pid}/status").read_text(encoding="ascii", errors="replace")
    except OSError:
        return None
    found = re.search(r"^VmRSS:\s*(\d+) kB", status, re.MULTILINE)
    return int(found[1]) if found else None


def server_command(server_name: str) -> list[str]:
    """The command that serves the step in the current folder, but for its --port."""
    if server_name == "uvicorn":
        # As the deployment runs it. Channels' router has no lifespan protocol, which uvicorn would log it lacks.
        options = ["--host", HOST, "--ws", "websockets-sansio", "--ws-per-message-deflate", "false"]
        # uvloop where the lock installs it (not on Windows), as the deployment runs.
        options += ["--loop", "uvloop" if importlib.util.find_spec("uvloop") else "asyncio", "--lifespan", "off"]
        return [sys.executable, "-m", "uvicorn", *options, "mysite.asgi:application"]
    return [sys.executable, "-m", "daphne", "-b", HOST, "mysite.asgi:application"]


@contextlib.contextmanager
def running(command: list[str], cwd: Path, env: dict[str, str], log: Path):
    with open(log, "ab") as output:
        process = subprocess.Popen(command, cwd=cwd, env=env, stdout=output, stderr=subprocess.STDOUT)
    try:
        yield process
    finally:
        stop_process(process)


def wait_until_listening(target: str, port: int, process: subprocess.Popen, log: Path) -> None:
    def listening() -> bool:
        if process.poll() is not None:
            raise SystemExit(f"bench: {target} did not start:\n{log.read_text(errors='replace')}")
        return accepts_connections(port)

    try:
        wait_until(listening, f"{target} did not listen on port {port}", 30)
    except TimeoutError:
        raise SystemExit(f"bench: {target} did not start:\n{log.read_text(errors='replace')}") from None


# A traceback's last line, or a logged message that names the exception (the steps log Redis errors in one line).
ERROR_NAME = re.compile(r"\b(\w+(?:Error|Exception|Full))\b")


def server_errors(log: Path, since: int) -> dict[str, int]:
    """The exceptions the server logged after byte `since` of its log, by name."""
    with open(log, "rb") as text:
        text.seek(since)
        found: dict[str, int] = {}
        for line in text.read().decode(errors="replace").splitlines():
            names = ERROR_NAME.findall(line)
            if names and not line[:1].isspace() and not line.startswith(("Traceback", "During handling", "The above")):
                found[f"server: {names[-1]}"] = found.get(f"server: {names[-1]}", 0) + 1
    return found


# Reports.


def table(results: list[Result]) -> str:
    rows = [COLUMNS, ["---"] * len(COLUMNS), *(result.row() for result in results)]
    return "\n".join("| " + " | ".join(row) + " |" for row in rows)


def ratios(results: list[Result]) -> list[str]:
    plain = next((result for result in results if result.target == "plain"), None)
    lines = []
    for result in results:
        if plain is None or result is plain or not plain.delivered_per_second:
            continue
        p99 = f", p99 × {result.p99_ms / plain.p99_ms:.1f}" if result.p99_ms and plain.p99_ms else ""
        share = result.delivered_per_second / plain.delivered_per_second
        lines.append(f"{result.label}: delivered/s × {share:.2f} of plain{p99}")
    return lines


def idles(results: list[Result]) -> list[str]:
    return [
        f"{result.label}: after {result.idle_seconds:g} s idle, {result.open_after_idle:,} of "
        f"{result.rooms * result.clients - result.connect_errors:,} sockets still open"
        for result in results
        if result.open_after_idle is not None
    ]


def send_lags(results: list[Result]) -> list[str]:
    return [
        f"{result.label}: its clients sent 99% of their messages within {result.send_lag_p99_ms:,.0f} ms of when due"
        for result in results
        if result.send_lag_p99_ms is not None
    ]


def floods(results: list[Result]) -> list[str]:
    return [f"{result.label}: {result.flood.outcome()}" for result in results if result.flood]


def errors_seen(results: list[Result]) -> list[str]:
    return [
        f"{result.label}: " + ", ".join(f"{kind} × {count}" for kind, count in sorted(result.errors.items()))
        for result in results
        if result.errors
    ]


def sweep_summary(results: list[Result], targets: list[str]) -> list[str]:
    best = {}
    for target in targets:
        passing = [result.offered for result in results if result.target == target and result.passes]
        best[target] = max(passing, default=0.0)
    labels = {result.target: result.label for result in results}
    lines = []
    for target in targets:
        label = labels.get(target, target)
        line = f"{label}: highest offered rate with nothing lost and p99 < {P99_LIMIT_MS} ms: {best[target]:,.0f}/s"
        if target != "plain" and best.get("plain"):
            line += f" ({best[target] / best['plain']:.2f} of plain)"
        lines.append(line)
    return lines


def svg_plot(results: list[Result], targets: list[str]) -> str:
    """p99 latency against offered deliveries per second, one line per target, both axes logarithmic."""
    width, height, left, right, top, bottom = 640, 400, 70, 120, 20, 50
    points = [result for result in results if result.p99_ms]
    xs = [result.offered for result in points]
    ys = [max(result.p99_ms, 1) for result in points] + [P99_LIMIT_MS]
    x_low, x_high = math.log10(min(xs) / 1.3), math.log10(max(xs) * 1.3)
    y_low, y_high = math.log10(min(ys) / 1.5), math.log10(max(ys) * 1.5)

    def x(value: float) -> float:
        return left + (math.log10(value) - x_low) / (x_high - x_low) * (width - left - right)

    def y(value: float) -> float:
        return height - bottom - (math.log10(max(value, 1)) - y_low) / (y_high - y_low) * (height - top - bottom)

    colours = {"ours": "#1f77b4", "official": "#d62728", "plain": "#2ca02c"}
    labels = {result.target: result.label for result in results}
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" font-family="sans-serif" '
        'font-size="12">',
        f'<rect width="{width}" height="{height}" fill="white"/>',
        f'<line x1="{left}" y1="{height - bottom}" x2="{width - right}" y2="{height - bottom}" stroke="black"/>',
        f'<line x1="{left}" y1="{top}" x2="{left}" y2="{height - bottom}" stroke="black"/>',
        f'<line x1="{left}" y1="{y(P99_LIMIT_MS):.1f}" x2="{width - right}" y2="{y(P99_LIMIT_MS):.1f}" '
        'stroke="grey" stroke-dasharray="4 4"/>',
        f'<text x="{left + 6}" y="{y(P99_LIMIT_MS) - 5:.1f}" fill="grey">p99 limit {P99_LIMIT_MS} ms</text>',
        f'<text x="{(left + width - right) / 2}" y="{height - 10}" text-anchor="middle">'
        "offered deliveries per second</text>",
        f'<text x="15" y="{(top + height - bottom) / 2}" text-anchor="middle" '
        f'transform="rotate(-90 15 {(top + height - bottom) / 2})">p99 latency, ms</text>',
    ]
    for exponent in range(math.floor(x_low), math.ceil(x_high) + 1):
        for mantissa in (1, 2, 5):
            value = mantissa * 10**exponent
            if x_low <= math.log10(value) <= x_high:
                parts.append(
                    f'<text x="{x(value):.1f}" y="{height - bottom + 16}" text-anchor="middle">{value:,}</text>'
                )
    for exponent in range(math.floor(y_low), math.ceil(y_high) + 1):
        for mantissa in (1, 10 / 3):
            value = round(mantissa * 10**exponent)
            if value and y_low <= math.log10(value) <= y_high:
                parts.append(f'<text x="{left - 6}" y="{y(value) + 4:.1f}" text-anchor="end">{value:,}</text>')
    for row, target in enumerate(targets):
        mine = sorted((result for result in points if result.target == target), key=lambda result: result.offered)
        colour = colours.get(target, "black")
        if len(mine) > 1:
            path = " ".join(f"{x(result.offered):.1f},{y(result.p99_ms):.1f}" for result in mine)
            parts.append(f'<polyline points="{path}" fill="none" stroke="{colour}" stroke-width="2"/>')
        for result in mine:
            fill = colour if result.passes else "white"
            parts.append(
                f'<circle cx="{x(result.offered):.1f}" cy="{y(result.p99_ms):.1f}" r="4" fill="{fill}" '
                f'stroke="{colour}" stroke-width="2"/>'
            )
        label = labels.get(target, target)
        parts.append(f'<text x="{width - right + 4}" y="{top + 14 + 16 * row}" fill="{colour}">{label}</text>')
    parts.append(
        f'<text x="{width - right + 4}" y="{top + 30 + 16 * len(targets)}" fill="grey">hollow: failed</text>',
    )
    parts.append("</svg>")
    return "\n".join(parts) + "\n"


def check_plot(path: Path) -> None:
    """Before a long sweep: that the plot can be written in the format its name asks for."""
    if path.suffix not in (".svg", ".png"):
        raise SystemExit("bench: --plot writes an .svg or a .png file")
    if path.suffix == ".png":
        with headless_chromium():
            pass


@contextlib.contextmanager
def headless_chromium():
    from playwright.sync_api import Error, sync_playwright

    with sync_playwright() as playwright:
        try:
            browser = playwright.chromium.launch(executable_path=find_chromium(), headless=True, args=CHROMIUM_FLAGS)
        except Error as error:
            if "Executable doesn't exist" not in error.message:
                raise
            raise SystemExit(f"bench: {NO_BROWSER}, or draw an .svg") from None
        try:
            yield browser
        finally:
            browser.close()


def write_plot(svg: str, path: Path) -> None:
    if path.suffix != ".png":
        path.write_text(svg, encoding="utf-8")
        return
    with headless_chromium() as browser:
        page = browser.new_page()
        page.set_content(f'<body style="margin: 0">{svg}</body>')
        page.locator("svg").screenshot(path=path)


def planned_loads(args: argparse.Namespace) -> list[Load]:
    """The runs the options ask for: one, of M messages or of --seconds at the rate; or one for each rate of a sweep."""
    if args.seconds is not None and not 0 < args.seconds <= MAX_SECONDS:
        raise SystemExit(f"bench: --seconds takes more than 0 and up to {MAX_SECONDS}")
    if args.sweep:
        seconds = DEFAULT_SWEEP_SECONDS if args.seconds is None else args.seconds
        rates = sorted(float(rate) for rate in args.sweep.split(","))
        loads = [
            Load(args.rooms, args.clients, max(1, round(rate * seconds)), rate, args.flood, args.idle) for rate in rates
        ]
    else:
        if args.seconds is not None and args.messages is not None:
            raise SystemExit("bench: give --messages or --seconds, not both")
        messages = args.messages
        if messages is None:
            messages = DEFAULT_MESSAGES if args.seconds is None else max(1, round(args.rate * args.seconds))
        loads = [Load(args.rooms, args.clients, messages, args.rate, args.flood, args.idle)]
    for load in loads:
        load.check()
    return loads


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="bench.py", description=__doc__.split("\n\n")[0])
    add_arguments(parser)
    args = parser.parse_args(argv)
    try:
        step = STEPS_DIR / resolve_step(args.step)
    except WorkshopError as error:
        raise SystemExit(f"bench: {error}") from None
    if not os.environ.get("REDIS_URL"):
        raise SystemExit("bench: set REDIS_URL, or run `python workshop.py bench`, which starts a Redis server")
    targets = [target.strip() for target in args.targets.split(",") if target.strip()]
    if not targets or set(targets) - set(TARGETS):
        raise SystemExit(f"bench: --targets takes some of {', '.join(TARGETS)}")
    loads = planned_loads(args)
    if args.plot:
        check_plot(Path(args.plot))
    if not 1 <= args.processes <= MAX_PROCESSES:
        raise SystemExit(f"bench: --processes takes 1 to {MAX_PROCESSES}")

    processes = f"{args.processes} {args.server} processes" if args.processes > 1 else args.server
    print(f"bench: {step.name}, targets {', '.join(targets)}, on {HOST}; {processes} for each step target", flush=True)
    results: list[Result] = []
    with tempfile.TemporaryDirectory(prefix="bench-") as scratch:
        for target in targets:
            users = args.rooms * args.clients + bool(args.flood)
            with server(target, step, Path(scratch), args.processes, users, args.server) as served:
                for number, load in enumerate(loads):
                    sizes = served.log_sizes()
                    result = asyncio.run(load_server(target, served, load, f"bench{number}-{random.randrange(10**6)}"))
                    time.sleep(0.5)  # the server's last log lines
                    for kind, count in served.errors_since(sizes).items():
                        result.errors[kind] = result.errors.get(kind, 0) + count
                    results.append(result)
                    print(f"  {table([result]).splitlines()[-1]}", flush=True)
                    if args.sweep and not result.passes:
                        break

    print()
    print(table(results))
    for line in ratios(results) if not args.sweep else sweep_summary(results, targets):
        print(line)
    for line in idles(results) + floods(results) + ([] if args.sweep else send_lags(results)):
        print(line)
    for line in errors_seen(results):
        print(line)
    if args.json:
        Path(args.json).write_text(json.dumps([asdict(result) for result in results], indent=2), encoding="utf-8")
    if args.plot and args.sweep:
        write_plot(svg_plot(results, targets), Path(args.plot))
        print(f"bench: drew {args.plot}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
