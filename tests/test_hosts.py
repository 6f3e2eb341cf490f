"""The deployment of docs/deploy.md spread over hosts, as "Several hosts" there lays it out: Linux network namespaces
joined by veth links to one bridge, each a host with nothing but the network in common with the others.

- edge: nginx with deploy/nginx.conf, reachable from this machine on an address of its own, and from the hosts below;
- app1, app2: each its own copy of the code, running two uvicorn processes as deploy/chat@.service starts them,
  bound to the host's address and trusting forwarded headers from the edge's alone;
- data: PostgreSQL and two Redis servers, each asking for a password, which the app hosts reach over the network.

The test itself runs outside the namespaces, as a browser would, and talks to nginx alone.
"""

import asyncio
import concurrent.futures
import contextlib
import itertools
import json
import os
import re
import secrets
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import psycopg
import pytest
from channels_redis.pubsub import RedisPubSubLoopLayer
from test_deploy import (
    DEPLOY,
    HOST,
    MESSAGES_EACH,
    SERVICE_RESTART,
    STEP,
    STOPPED_BY_SIGTERM,
    Page,
    accepted_socket,
    kept_sessions,
    nginx_binary,
    nginx_command,
    site_config,
    trusting,
    unit_settings,
    write_certificate,
    write_nginx_conf,
)
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed

from tooling.ci import missing
from tooling.config import WorkshopError
from tooling.postgresql import UNPRIVILEGED_USER, find_postgresql, postgresql_missing
from tooling.processes import stop_process, wait_until, wait_until_async
from tooling.redis_server import find_redis_server

HOSTS = ["edge", "app1", "app2", "data"]
APP_PORTS = [8001, 8002]
REDIS_PORTS = [6379, 6380]
POSTGRESQL_PORT = 5432
START_SECONDS = 30
GAP_WAIT = 1  # seconds, as room.js waits
REDIS_MESSAGES_EACH = 30
# The pages of each test, each a user of its own; one `manage.py shell` makes a session of each as the hosts start.
STEADY_PAGES = ["a0", "a1", "a2", "a3"]
RESTARTED_REDIS_PAGES, UNTOUCHED_REDIS_PAGES = ["r0", "r1"], ["u0", "u1"]
STOPPED_HOST_PAGES = ["s0", "s1", "s2", "s3"]
USERS = [*STEADY_PAGES, *RESTARTED_REDIS_PAGES, *UNTOUCHED_REDIS_PAGES, *STOPPED_HOST_PAGES]
NO_NAMESPACES = (
    "the deployment across hosts needs Linux network namespaces, made with `ip netns` from iproute2 as root: run the "
    "repository checks as root on Linux (sudo apt-get install iproute2 if `ip` is missing)"
)


def ip(*args: str) -> None:
    result = subprocess.run(["ip", *args], capture_output=True, text=True)
    if result.returncode:
        raise RuntimeError(f"ip {' '.join(args)}: {result.stderr.strip()}")


class Network:
    """A private /24 with a bridge, a namespace per host plugged into it, and one more link from this machine to the
    edge, so that what runs here reaches nginx and nothing behind it."""

    def __init__(self):
        self.name = f"c{secrets.token_hex(3)}"  # interface names have at most 15 characters
        # Two neighbouring /24s picked at random, unlikely to be this machine's: the hosts', and the link to the edge.
        second, third = secrets.randbelow(50) + 200, secrets.randbelow(127) * 2
        self.address = {host: f"10.{second}.{third}.{10 + index}" for index, host in enumerate(HOSTS)}
        self.subnet = f"10.{second}.{third}.0/24"
        self.this_machine, self.edge_outside = f"10.{second}.{third + 1}.1", f"10.{second}.{third + 1}.2"
        self.namespaces: list[str] = []

    def namespace(self, host: str) -> str:
        return f"{self.name}-{host}"

    def build(self) -> None:
        lan = self.namespace("lan")
        self.add_namespace(lan)
        ip("-n", lan, "link", "add", "br0", "type", "bridge")
        ip("-n", lan, "link", "set", "br0", "up")
        for index, host in enumerate(HOSTS):
            namespace = self.namespace(host)
            self.add_namespace(namespace)
            port = f"{self.name}p{index}"
            ip("link", "add", port, "type", "veth", "peer", "name", "eth0", "netns", namespace)
            ip("link", "set", port, "netns", lan)
            ip("-n", lan, "link", "set", port, "master", "br0", "up")
            ip("-n", namespace, "addr", "add", f"{self.address[host]}/24", "dev", "eth0")
            ip("-n", namespace, "link", "set", "eth0", "up")
            ip("-n", namespace, "link", "set", "lo", "up")
        outside = f"{self.name}out"
        ip("link", "add", outside, "type", "veth", "peer", "name", "wan", "netns", self.namespace("edge"))
        ip("addr", "add", f"{self.this_machine}/30", "dev", outside)
        ip("link", "set", outside, "up")
        ip("-n", self.namespace("edge"), "addr", "add", f"{self.edge_outside}/30", "dev", "wan")
        ip("-n", self.namespace("edge"), "link", "set", "wan", "up")

    def add_namespace(self, namespace: str) -> None:
        ip("netns", "add", namespace)
        self.namespaces.append(namespace)

    def remove(self) -> None:
        """Deleting a namespace deletes its links, and the veth peers outside it with them."""
        for namespace in reversed(self.namespaces):
            with contextlib.suppress(RuntimeError):
                ip("netns", "del", namespace)

    def run_in(self, host: str) -> list[str]:
        return ["ip", "netns", "exec", self.namespace(host)]


class Server:
    """A program running on one of the hosts, its output in a log file, ready once the log says so."""

    def __init__(self, name: str, command: list[str], log: Path, ready: str, **options):
        self.name, self.command, self.log, self.ready, self.options = name, command, log, ready, options
        self.process: subprocess.Popen | None = None

    def start(self) -> "Server":
        self.started_at = len(self.output())  # where this start's lines begin, after those of an earlier one
        with self.log.open("ab") as output:
            self.process = subprocess.Popen(self.command, stdout=output, stderr=subprocess.STDOUT, **self.options)
        return self

    def wait_until_ready(self) -> None:
        deadline = time.monotonic() + START_SECONDS
        while self.ready not in self.output()[self.started_at :]:
            if self.process.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"{self.name} never said {self.ready!r}:\n{self.output()}")
            time.sleep(0.05)

    def output(self) -> str:
        return self.log.read_text(errors="replace") if self.log.exists() else ""

    def stop(self) -> int | None:
        """SIGTERM, as systemd stops a unit, then SIGKILL after 20 seconds; how the process ended."""
        if self.process is None or self.process.poll() is not None:
            return None if self.process is None else self.process.returncode
        stop_process(self.process, 20)
        return self.process.returncode

    def wait(self) -> int:
        try:
            return self.process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.process.kill()
            return self.process.wait()


class Hosts:
    """The four hosts, what runs on them, and how a page reaches the chat through the edge."""

    def __init__(self, folder: Path, network: Network):
        self.folder, self.network = folder, network
        self.secret = secrets.token_urlsafe(50)  # every app host signs sessions with the same key
        self.redis_password, self.database_password = secrets.token_urlsafe(24), secrets.token_urlsafe(24)
        self.redis: list[Server] = []
        self.postgresql: Server | None = None
        self.app_servers: dict[str, list[Server]] = {}
        self.nginx: Server | None = None
        self.session_keys: dict[str, str] = {}
        self.tls = trusting(write_certificate(folder / "edge"))
        # Outside pytest's folder, which only its owner may enter: PostgreSQL runs as another user.
        self.data = Path(tempfile.mkdtemp(prefix="chat-data-"))
        self.origin = f"https://{HOST}"

    def redis_urls(self) -> list[str]:
        address = self.network.address["data"]
        return [f"redis://:{self.redis_password}@{address}:{port}/0" for port in REDIS_PORTS]

    def start(self) -> None:
        self.start_data_host()
        for host in ("app1", "app2"):
            self.copy_code(host)
        self.manage("app1", "migrate", "--noinput")
        self.manage("app1", "collectstatic", "--noinput")
        shutil.copytree(self.folder / "app1" / "static", self.folder / "edge" / "static")
        for host in ("app1", "app2"):
            self.app_servers[host] = [self.uvicorn(host, port).start() for port in APP_PORTS]
        self.nginx = self.start_nginx()
        for server in [*self.app_servers["app1"], *self.app_servers["app2"]]:
            server.wait_until_ready()

    # The data host.

    def start_data_host(self) -> None:
        postgresql = find_postgresql()
        if postgresql is None:
            missing(postgresql_missing())
        try:
            redis_server = find_redis_server(sys.executable)
        except WorkshopError as error:
            missing(str(error))
        self.redis = [self.redis_server(redis_server, port).start() for port in REDIS_PORTS]
        self.postgresql = self.start_postgresql(postgresql, self.data)
        for server in self.redis:
            server.wait_until_ready()

    def redis_server(self, program: str, port: int) -> Server:
        options = ["--bind", self.network.address["data"], "--port", str(port), "--save", ""]
        options += ["--requirepass", self.redis_password]
        log = self.data / f"redis-{port}.log"
        return Server(f"Redis on {port}", [*self.network.run_in("data"), program, *options], log, "Ready to accept")

    def start_postgresql(self, postgresql, folder: Path) -> Server:
        """A cluster that asks every connection over the network for the password, run as an unprivileged user."""
        shutil.chown(folder, UNPRIVILEGED_USER)
        as_user = ["runuser", "-u", UNPRIVILEGED_USER, "--"]
        password_file = folder / "password"
        password_file.write_text(self.database_password)
        shutil.chown(password_file, UNPRIVILEGED_USER)
        cluster = folder / "cluster"
        initdb = [postgresql.initdb, "-D", str(cluster), "-U", "postgres", "--pwfile", str(password_file)]
        initdb += ["--auth-local=trust", "--auth-host=scram-sha-256", "-E", "UTF8", "--no-locale", "--no-sync"]
        made = subprocess.run([*as_user, *initdb], capture_output=True, text=True)
        assert made.returncode == 0, f"initdb failed:\n{made.stdout}{made.stderr}"
        with (cluster / "pg_hba.conf").open("a") as rules:
            rules.write(f"host all all {self.network.subnet} scram-sha-256\n")
        options = ["-D", str(cluster), "-p", str(POSTGRESQL_PORT), "-k", str(folder)]
        options += ["-c", f"listen_addresses={self.network.address['data']}", "-c", "fsync=off"]
        command = [*self.network.run_in("data"), *as_user, postgresql.postgres, *options]
        server = Server("PostgreSQL", command, folder / "postgres.log", "ready to accept connections").start()
        server.wait_until_ready()
        with self.database("postgres") as connection:
            connection.execute("CREATE DATABASE chat")
        return server

    def database(self, name: str = "chat") -> psycopg.Connection:
        """A connection for the test's own checks, through the cluster's Unix socket rather than the network."""
        return psycopg.connect(host=str(self.data), port=POSTGRESQL_PORT, user="postgres", dbname=name, autocommit=True)

    def saved_messages(self, room: str) -> list[tuple[int, str]]:
        query = """
            SELECT number, client_id FROM chat_message JOIN chat_room ON chat_room.id = chat_message.room_id
            WHERE chat_room.name = %s ORDER BY number
        """
        with self.database() as connection:
            return connection.execute(query, [room]).fetchall()

    # The app hosts.

    def copy_code(self, host: str) -> None:
        """The host's own copy of the step and of deploy/, as `git clone` puts them on a server."""
        root = self.folder / host
        shutil.copytree(
            STEP, root / "app" / "steps" / STEP.name, ignore=shutil.ignore_patterns("db.sqlite3*", "__pycache__")
        )
        shutil.copytree(DEPLOY, root / "app" / "deploy", ignore=shutil.ignore_patterns("__pycache__"))

    def environment(self, host: str) -> dict[str, str]:
        """deploy/environment.example's variables for an app host: the data host's PostgreSQL and both its Redis."""
        root = self.folder / host
        _, unit_environment = unit_settings()
        address = self.network.address["data"]
        values = {
            "DJANGO_SECRET_KEY": self.secret,
            "DJANGO_ALLOWED_HOSTS": HOST,
            "DJANGO_STATIC_ROOT": str(root / "static"),
            "DJANGO_SQLITE_PATH": str(root / "unused.sqlite3"),
            "DATABASE_URL": f"postgres://postgres:{self.database_password}@{address}:{POSTGRESQL_PORT}/chat",
            "REDIS_URL": self.redis_urls()[0],
            "REDIS_URLS": ",".join(self.redis_urls()),
        }
        return {
            **os.environ,
            **{name: value for name, value in unit_environment.items() if name != "PYTHONPATH"},
            **values,
            "PYTHONPATH": str(root / "app" / "deploy"),
            "PYTHONUNBUFFERED": "1",
        }

    def code(self, host: str) -> Path:
        return self.folder / host / "app" / "steps" / STEP.name

    def manage(self, host: str, *args: str) -> str:
        command = [*self.network.run_in(host), sys.executable, "manage.py", *args]
        result = subprocess.run(
            command, cwd=self.code(host), env=self.environment(host), capture_output=True, text=True
        )
        assert result.returncode == 0, f"`manage.py {' '.join(args)}` on {host} failed:\n{result.stdout}{result.stderr}"
        return result.stdout

    def sessions(self, *usernames: str) -> list[str]:
        return kept_sessions(
            self.session_keys, usernames, lambda code: self.manage("app1", "shell", "-v", "0", "-c", code)
        )

    def uvicorn(self, host: str, port: int) -> Server:
        """One uvicorn process as the unit starts it, but on the host's own address, trusting the edge's headers."""
        arguments, _ = unit_settings()
        changes = {"--host": self.network.address[host], "--forwarded-allow-ips": self.network.address["edge"]}
        for option, value in changes.items():
            assert arguments[arguments.index(option) + 1] == "127.0.0.1", f"the unit's {option} is no longer 127.0.0.1"
            arguments[arguments.index(option) + 1] = value
        arguments = [word.replace("%i", str(port)) for word in arguments]
        command = [*self.network.run_in(host), sys.executable, "-m", "uvicorn", *arguments]
        log = self.folder / host / f"uvicorn-{port}.log"
        return Server(
            f"uvicorn {host}:{port}",
            command,
            log,
            "Uvicorn running on",
            cwd=self.code(host),
            env=self.environment(host),
        )

    # The edge.

    def start_nginx(self) -> Server:
        edge = self.folder / "edge"
        site = site_config(edge, 80, 443, APP_PORTS, edge / "static").replace(
            "listen 127.0.0.1:", f"listen {self.network.edge_outside}:"
        )
        servers = "".join(
            f"    server {self.network.address[host]}:{port};\n" for host in ("app1", "app2") for port in APP_PORTS
        )
        site, count = re.subn(r"(    server 127\.0\.0\.1:\d+;\n)+", servers, site, count=1)
        assert count == 1, "deploy/nginx.conf has no upstream block of 127.0.0.1 servers"
        write_nginx_conf(edge, site)
        nginx = Server("nginx", [*self.network.run_in("edge"), *nginx_command(edge)], edge / "nginx.log", "").start()
        deadline = time.monotonic() + START_SECONDS
        while not accepts(self.network.edge_outside, 443):
            assert nginx.process.poll() is None and time.monotonic() < deadline, (
                f"nginx did not start:\n{nginx.output()}"
            )
            time.sleep(0.05)
        return nginx

    def websocket(self, room: str, session: str, query: str = "", origin: str | None = None):
        """A socket through the edge, as the room's page opens it from a browser outside."""
        return connect(
            f"wss://{HOST}/ws/chat/{room}/?{query}",
            host=self.network.edge_outside,
            ssl=self.tls,
            origin=origin or self.origin,
            additional_headers={"Cookie": f"sessionid={session}"},
            open_timeout=5,
            proxy=None,
        )

    def host_of(self, room: str, query: str) -> str:
        """The app host whose uvicorn logged the handshake of the socket opened with `query`."""
        pattern = accepted_socket(room, query)
        found: list[str] = []

        def logged():
            found[:] = [
                host
                for host, servers in self.app_servers.items()
                for server in servers
                if re.search(pattern, server.output())
            ]
            return found

        wait_until(logged, f"no uvicorn logged /{pattern}/", 10)
        assert len(found) == 1, f"more than one uvicorn logged /{pattern}/"
        return found[0]

    def start_stopped_app_servers(self) -> None:
        stopped = [
            server for servers in self.app_servers.values() for server in servers if server.process.poll() is not None
        ]
        for server in stopped:
            server.start()
        for server in stopped:
            server.wait_until_ready()

    def stop(self) -> None:
        """The edge first, then the app hosts, then the data host, as a clean shutdown of the whole site would."""
        for server in [self.nginx, *itertools.chain(*self.app_servers.values()), *self.redis, self.postgresql]:
            if server is not None:
                server.stop()
        shutil.rmtree(self.data, ignore_errors=True)


def accepts(address: str, port: int) -> bool:
    with contextlib.suppress(OSError), socket.create_connection((address, port), timeout=0.5):
        return True
    return False


class ChattingPage(Page):
    """test_deploy's page, which also asks for the messages it lacks once a number has stayed missing for a second,
    as room.js does: Redis forgets what it could not pass on while a room's server was down. And a message the server
    refused, busy catching up, it sends again a second later, as the person would."""

    gap_timer = None

    def read(self, frame: dict):
        super().read(frame)
        if max(self.numbers, default=0) > self.last_number and self.gap_timer is None:
            self.gap_timer = asyncio.get_running_loop().call_later(GAP_WAIT, self.ask_for_what_is_missing)
        if (client_id := frame.get("refused")) in self.unsaved:
            message = {"message": self.unsaved[client_id], "client_id": client_id}
            asyncio.get_running_loop().call_later(GAP_WAIT, lambda: asyncio.ensure_future(self.send_quietly(message)))

    def ask_for_what_is_missing(self):
        self.gap_timer = None
        if max(self.numbers, default=0) > self.last_number and self.socket is not None:
            asyncio.ensure_future(self.send_quietly({"fetch_after": self.last_number}))

    async def send_quietly(self, frame: dict):
        if self.socket is None:
            return  # it reconnects, and then asks with ?after= and sends again what was not saved
        with contextlib.suppress(ConnectionClosed):
            await self.socket.send(json.dumps(frame))


def can_make_namespaces() -> str | None:
    """Why this machine cannot build the hosts, or None when it can."""
    if sys.platform != "linux" or os.geteuid() != 0 or not shutil.which("ip"):
        return NO_NAMESPACES
    probe = f"c{secrets.token_hex(3)}-probe"
    try:
        ip("netns", "add", probe)
    except RuntimeError as error:
        return f"{NO_NAMESPACES}; here `ip netns add` failed: {error}"
    ip("netns", "del", probe)
    return None


@pytest.fixture(scope="module")
def started_hosts(tmp_path_factory):
    if problem := can_make_namespaces():
        missing(problem)
    nginx_binary()
    folder = tmp_path_factory.mktemp("hosts")
    for host in HOSTS:
        (folder / host).mkdir()
    network = Network()
    deployment = Hosts(folder, network)
    try:
        network.build()
        deployment.start()
        deployment.sessions(*USERS)
        yield deployment
    finally:
        deployment.stop()
        network.remove()


@pytest.fixture
def hosts(started_hosts):
    """The hosts, every uvicorn serving: those a test stopped, the next test to need the hosts starts again."""
    started_hosts.start_stopped_app_servers()
    return started_hosts


def state(pages: list[ChattingPage]) -> str:
    """What each page has, for a failure to say."""
    return "; ".join(
        f"{page.name} has 1 to {page.last_number} of {sorted(page.numbers)[-1:]}, {len(page.unsaved)} unsaved, "
        f"closed {page.close_codes}, errors {page.errors[-2:]}"
        for page in pages
    )


def chat_in(hosts: Hosts, room: str, names: list[str], while_they_chat=None, messages_each: int = MESSAGES_EACH):
    """Pages of `names`, each a user of its own, chat in `room`, each sending messages_each messages at a typing pace,
    while `while_they_chat` runs in a thread once a quarter has come back; returns the pages and its result."""
    pages = [
        ChattingPage(hosts, name, room, session) for name, session in zip(names, hosts.sessions(*names), strict=True)
    ]
    total = len(pages) * messages_each

    async def chat():
        readers = []
        try:
            for page in pages:
                readers.append(asyncio.create_task(page.stay_connected()))
                await asyncio.wait_for(page.open.wait(), 10)
            sending = asyncio.gather(*(page.send_steadily(messages_each) for page in pages))
            await wait_until_async(
                lambda: sum(page.acknowledged for page in pages) >= total / 4, "few messages came back", 10
            )
            result = await asyncio.to_thread(while_they_chat) if while_they_chat else None
            await asyncio.wait_for(sending, 30)
            await wait_until_async(
                lambda: not any(page.unsaved for page in pages), f"{room}: {state(pages)} came back", 30
            )
            await wait_until_async(
                lambda: all(page.last_number == total for page in pages), f"{room}: {state(pages)}", 10
            )
            return result
        finally:
            for reader in readers:
                reader.cancel()
            await asyncio.gather(*readers, return_exceptions=True)

    return pages, asyncio.run(chat())


def assert_saved_once(hosts: Hosts, room: str, pages: list[ChattingPage], messages_each: int, in_order: bool = True):
    """Every message of every page saved once, numbered without a gap, each page's in the order it sent them unless
    `in_order` is false: a message the server refused comes later, when the page sends it again."""
    saved = hosts.saved_messages(room)
    assert [number for number, _ in saved] == list(range(1, len(pages) * messages_each + 1)), "numbers with gaps"
    for page in pages:
        ids = [client_id for _, client_id in saved if client_id.startswith(f"{page.name}-")]
        expected = [f"{page.name}-{number}" for number in range(1, messages_each + 1)]
        assert ids == expected if in_order else sorted(ids) == sorted(expected), f"{page.name}'s messages"


def test_sockets_on_both_app_hosts_get_every_message_of_their_room_numbered_once(hosts):
    room = f"hosts_{secrets.token_hex(4)}"

    pages, _ = chat_in(hosts, room, STEADY_PAGES)

    assert {hosts.host_of(room, page.queries[0]) for page in pages} == {"app1", "app2"}
    assert [len(page.queries) for page in pages] == [1] * len(pages), "a page reconnected"
    assert [page.errors for page in pages] == [[]] * len(pages)
    assert_saved_once(hosts, room, pages, MESSAGES_EACH)


def room_on_each_redis(hosts: Hosts) -> list[str]:
    """A room name for each Redis, by the channel layer's own choice for the room's group, as every app host makes it
    from REDIS_URLS."""
    layer = RedisPubSubLoopLayer(hosts=hosts.redis_urls())
    rooms: dict[int, str] = {}
    while len(rooms) < len(REDIS_PORTS):
        room = f"redis_{secrets.token_hex(4)}"
        rooms[layer._shards.index(layer._get_shard(layer._get_group_channel_name(f"chat_{room}")))] = room
    return [rooms[index] for index in range(len(REDIS_PORTS))]


def test_restarting_one_redis_closes_its_rooms_sockets_alone_and_they_recover(hosts):
    restarted, untouched = room_on_each_redis(hosts)

    def restart_the_first_redis():
        hosts.redis[0].stop()
        hosts.redis[0].start().wait_until_ready()

    with concurrent.futures.ThreadPoolExecutor() as threads:
        # Chatting goes on for seconds after the restart: what Redis could not pass on meanwhile, the pages ask for.
        chats = [
            threads.submit(
                chat_in, hosts, restarted, RESTARTED_REDIS_PAGES, restart_the_first_redis, REDIS_MESSAGES_EACH
            ),
            threads.submit(chat_in, hosts, untouched, UNTOUCHED_REDIS_PAGES, None, REDIS_MESSAGES_EACH),
        ]
        (restarted_pages, _), (untouched_pages, _) = [chat.result() for chat in chats]

    assert_saved_once(hosts, restarted, restarted_pages, REDIS_MESSAGES_EACH, in_order=False)
    # The other room's sockets stay open. Its messages may be refused for a moment, and sent again: the process
    # measures how late its deliveries run over all its rooms, and the interrupted room's ran late.
    assert_saved_once(hosts, untouched, untouched_pages, REDIS_MESSAGES_EACH, in_order=False)
    assert [page.close_codes for page in untouched_pages] == [[]] * len(untouched_pages), "the other room was closed"
    assert [len(page.queries) for page in untouched_pages] == [1] * len(untouched_pages)
    errors = [error["error"] for page in untouched_pages for error in page.errors]
    assert set(errors) <= {"The server is busy: this message was not saved, send it again."}, errors


def test_stopping_an_app_host_moves_its_pages_to_the_other_and_loses_nothing(hosts):
    room = f"stop_{secrets.token_hex(4)}"

    def stop_app2():
        """As the host shuts down: systemd stops both units at once, and each drains."""
        for server in hosts.app_servers["app2"]:
            server.process.terminate()
        return [server.wait() for server in hosts.app_servers["app2"]]

    pages, stopped = chat_in(hosts, room, STOPPED_HOST_PAGES, stop_app2)

    assert stopped == [STOPPED_BY_SIGTERM] * len(APP_PORTS), "uvicorn did not stop by itself once it had drained"
    first_hosts = {page: hosts.host_of(room, page.queries[0]) for page in pages}
    moved = [page for page in pages if first_hosts[page] == "app2"]
    stayed = [page for page in pages if first_hosts[page] == "app1"]
    assert moved and stayed, "nginx sent every socket to one host"
    # A page may first land on app2's other process, if that one has yet to stop listening, and move again.
    assert all(page.close_codes and set(page.close_codes) == {SERVICE_RESTART} for page in moved), (
        "not closed with 1012"
    )
    assert [hosts.host_of(room, page.queries[-1]) for page in moved] == ["app1"] * len(moved)
    assert [len(page.queries) for page in stayed] == [1] * len(stayed), "a page on the other host reconnected"
    assert [page.errors for page in pages] == [[]] * len(pages)
    assert_saved_once(hosts, room, pages, MESSAGES_EACH)
