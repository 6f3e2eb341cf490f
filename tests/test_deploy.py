"""The deployment in deploy/ works as docs/deploy.md says: nginx with its site, in front of two uvicorn processes of
the step the systemd unit names, started the way the unit starts them, with the production settings and one Redis."""

import asyncio
import contextlib
import datetime
import http.client
import itertools
import json
import os
import re
import secrets
import shutil
import signal
import socket
import sqlite3
import ssl
import subprocess
import sys
import time
from http.cookies import SimpleCookie
from pathlib import Path, PurePosixPath
from typing import NamedTuple
from urllib.parse import urlencode, urlsplit

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
from websockets.asyncio.client import connect
from websockets.client import ClientProtocol
from websockets.exceptions import ConnectionClosed, InvalidHandshake, InvalidStatus
from websockets.frames import Close, Frame, Opcode
from websockets.protocol import State
from websockets.uri import parse_uri

from bench.bench import server_command
from tooling.ci import missing
from tooling.config import ROOT, STEPS, STEPS_DIR, WorkshopError
from tooling.processes import accepts_connections, free_ports, stop_process, wait_until, wait_until_async
from tooling.redis_server import find_redis_server

DEPLOY = ROOT / "deploy"
SITE = DEPLOY / "nginx.conf"
UNIT = DEPLOY / "chat@.service"
CLEANER = DEPLOY / "chat-clearsessions.service"
ENVIRONMENT = DEPLOY / "environment.example"
NGINX_MISSING = "nginx is not installed: sudo apt-get install nginx (Debian, Ubuntu) or brew install nginx (macOS)"
# nginx's own configuration around the site, as /etc/nginx/nginx.conf has it, but with every file in the test's folder.
# As root, nginx's workers would run as nobody, who cannot read that folder.
NGINX_CONF = """\
{user}
pid {folder}/nginx.pid;
daemon off;
events {{}}
http {{
    access_log {folder}/access.log;
    client_body_temp_path {folder}/client_body;
    proxy_temp_path {folder}/proxy;
    fastcgi_temp_path {folder}/fastcgi;
    uwsgi_temp_path {folder}/uwsgi;
    scgi_temp_path {folder}/scgi;
    include {folder}/site.conf;
}}
"""
START_SECONDS = 20
PASSWORD = "a-password-for-this-test-only"
REDIS_PASSWORD = secrets.token_urlsafe(24)
FORGED_ADDRESS = "203.0.113.7"
# uvicorn closes every socket with the standard code as it stops, and then ends itself with the signal it got.
SERVICE_RESTART = 1012
STOPPED_BY_SIGTERM = -signal.SIGTERM
# Step 08 closes a socket with this code when the room's messages reach it over 10 seconds late.
FELL_BEHIND = 4013
# Under step 08's send limit of 10 a second, and few enough that a reconnecting page gets them all in its history.
PAGES, MESSAGES_EACH, SENDING_RATE = 4, 10, 8
# The users whose sessions the tests of the whole deployment use, each page's its own: one `manage.py shell` makes a
# session of each as the deployment starts.
PAGE_USERS = [f"p{number}" for number in range(PAGES)]
READER, SENDERS = "stops-reading", [f"keeps-sending-{number}" for number in range(8)]
USERS = ["alice", *PAGE_USERS, READER, *SENDERS]


def unit_lines(unit: Path = UNIT) -> dict[str, list[str]]:
    """Every setting of a unit, by name, with the value of each line that sets it."""
    settings: dict[str, list[str]] = {}
    for line in unit.read_text(encoding="utf-8").splitlines():
        if "=" in line and not line.startswith("#"):
            name, value = line.split("=", 1)
            settings.setdefault(name, []).append(value)
    return settings


def unit_settings() -> tuple[list[str], dict[str, str]]:
    """The uvicorn arguments after the program in the unit's ExecStart, and the variables of its Environment line."""
    settings = unit_lines()
    program, *arguments = settings["ExecStart"][0].split()
    assert program.endswith("/uvicorn"), f"the unit starts {program}, not uvicorn"
    return arguments, dict(variable.split("=", 1) for variable in settings["Environment"][0].split())


def example_environment() -> dict[str, str]:
    lines = ENVIRONMENT.read_text(encoding="utf-8").splitlines()
    return dict(line.split("=", 1) for line in lines if line.strip() and not line.startswith("#"))


# The step the unit serves, and the host name the example and the site are written for.
STEP = STEPS_DIR / PurePosixPath(unit_lines()["WorkingDirectory"][0]).name
HOST = example_environment()["DJANGO_ALLOWED_HOSTS"]


def nginx_binary() -> str:
    # Debian puts nginx in /usr/sbin, which is not on every user's PATH.
    found = shutil.which("nginx", path=os.pathsep.join([os.environ.get("PATH", ""), "/usr/sbin", "/usr/local/sbin"]))
    if not found:
        missing(NGINX_MISSING)
    return found


def replace_once(text: str, old: str, new: str, name: str) -> str:
    assert text.count(old) == 1, f"{name} no longer has `{old}` exactly once, which this test replaces"
    return text.replace(old, new)


def site_config(folder: Path, http_port: int, https_port: int, server_ports: list[int], static: Path) -> str:
    """deploy/nginx.conf with this machine's ports, certificate and static folder in place of the server's."""
    text = SITE.read_text(encoding="utf-8")
    replacements = {
        "listen 80 default_server;": f"listen 127.0.0.1:{http_port} default_server;",
        "listen 443 ssl default_server;": f"listen 127.0.0.1:{https_port} ssl default_server;",
        "listen 80;": f"listen 127.0.0.1:{http_port};",
        "listen 443 ssl;": f"listen 127.0.0.1:{https_port} ssl;",
        "server 127.0.0.1:8001;": f"server 127.0.0.1:{server_ports[0]};",
        "server 127.0.0.1:8002;": f"server 127.0.0.1:{server_ports[1]};",
        f"/etc/letsencrypt/live/{HOST}/fullchain.pem;": f"{folder}/certificate.pem;",
        f"/etc/letsencrypt/live/{HOST}/privkey.pem;": f"{folder}/key.pem;",
        "alias /srv/chat/static/;": f"alias {static}/;",
        "root /var/www/html;": f"root {folder}/webroot;",
    }
    for old, new in replacements.items():
        text = replace_once(text, old, new, "deploy/nginx.conf")
    return text


def write_certificate(folder: Path) -> Path:
    """A self-signed certificate for HOST with its key, where the site expects them; returns the certificate."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, HOST)])
    now = datetime.datetime.now(datetime.UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName(HOST)]), False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), False)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(key.public_key()), False)
        .sign(key, hashes.SHA256())
    )
    (folder / "certificate.pem").write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    private = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    (folder / "key.pem").write_bytes(private)
    return folder / "certificate.pem"


def write_nginx_conf(folder: Path, site: str) -> Path:
    (folder / "site.conf").write_text(site, encoding="utf-8")
    user = "user root;" if hasattr(os, "geteuid") and os.geteuid() == 0 else ""
    (folder / "nginx.conf").write_text(NGINX_CONF.format(user=user, folder=folder), encoding="utf-8")
    return folder / "nginx.conf"


def nginx_command(folder: Path, *args: str) -> list[str]:
    return [nginx_binary(), "-p", str(folder), "-c", str(folder / "nginx.conf"), "-e", str(folder / "error.log"), *args]


class Reply(NamedTuple):
    status: int
    headers: http.client.HTTPMessage
    body: bytes


def request(
    port: int,
    method: str = "GET",
    path: str = "/",
    headers=None,
    body=None,
    *,
    tls: ssl.SSLContext | None = None,
    host: str = HOST,
    server_name: str = HOST,
    source: str | None = None,
) -> Reply:
    """One request to 127.0.0.1:port for `host`: over TLS (naming server_name) when given a context, from the local
    address `source` when given one. The test's host name needs no DNS: the connection goes to 127.0.0.1 whatever
    it names."""
    connection = http.client.HTTPConnection(host, port, timeout=10)
    connection.sock = socket.create_connection(("127.0.0.1", port), 10, (source, 0) if source else None)
    if tls:
        connection.sock = tls.wrap_socket(connection.sock, server_hostname=server_name)
    connection.request(method, path, body=body, headers=headers or {})
    response = connection.getresponse()
    reply = Reply(response.status, response.headers, response.read())
    connection.close()
    return reply


def trusting(certificate: Path) -> ssl.SSLContext:
    return ssl.create_default_context(cafile=certificate)


class Process:
    """A server in a child process that listens on a port, its output in a log file."""

    def __init__(self, command: list[str], log: Path, port: int, **options):
        self.log = log
        self.port = port
        with log.open("ab") as output:
            self.process = subprocess.Popen(command, stdout=output, stderr=subprocess.STDOUT, **options)

    def wait_until_listening(self) -> None:
        deadline = time.monotonic() + START_SECONDS
        while not accepts_connections(self.port):
            if self.process.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"{self.process.args[0]} did not listen on port {self.port}:\n{self.output()}")
            time.sleep(0.05)

    def output(self) -> str:
        return self.log.read_text(errors="replace")

    def stop(self) -> int:
        """SIGTERM, as systemd stops a unit; returns how the process ended. One that does not end is killed."""
        if not stop_process(self.process, 20):
            pytest.fail(f"{self.process.args[0]} did not stop within 20 seconds of SIGTERM:\n{self.output()}")
        return self.process.returncode


class Deployment:
    """nginx on free ports in front of two uvicorn processes, as deploy/ sets them up, and how to talk to it."""

    def __init__(self, folder: Path, redis_url: str):
        self.folder = folder
        self.http_port, self.https_port, *self.server_ports = free_ports(4)
        self.origin = f"https://{HOST}:{self.https_port}"
        self.static = folder / "static"
        self.database = folder / "db.sqlite3"
        self.tls = trusting(write_certificate(folder))
        arguments, unit_environment = unit_settings()
        self.server_arguments = arguments
        self.env = {
            **os.environ,
            **{name: value for name, value in unit_environment.items() if name != "PYTHONPATH"},
            **self.server_environment(redis_url),
            "PYTHONPATH": str(DEPLOY),
            "PYTHONUNBUFFERED": "1",
        }
        self.servers: list[Process] = []
        self.nginx: Process | None = None
        self.session_keys: dict[str, str] = {}

    def server_environment(self, redis_url: str) -> dict[str, str]:
        """deploy/environment.example's variables, with values for this machine."""
        values = {
            "DJANGO_SECRET_KEY": secrets.token_urlsafe(50),
            "DJANGO_ALLOWED_HOSTS": HOST,
            "DJANGO_STATIC_ROOT": str(self.static),
            "DJANGO_SQLITE_PATH": str(self.database),
            "REDIS_URL": redis_url,
        }
        assert set(example_environment()) == set(values), "deploy/environment.example lists other variables"
        return values

    def manage(self, *args: str, **env: str) -> str:
        command = [sys.executable, "manage.py", *args]
        result = subprocess.run(command, cwd=STEP, env={**self.env, **env}, capture_output=True, text=True)
        assert result.returncode == 0, f"`manage.py {' '.join(args)}` failed:\n{result.stdout}{result.stderr}"
        return result.stdout + result.stderr

    def start(self) -> None:
        self.manage("migrate", "--noinput")
        self.manage(
            "createsuperuser", "--noinput", "--username", "alice", "--email", "", DJANGO_SUPERUSER_PASSWORD=PASSWORD
        )
        self.manage("collectstatic", "--noinput")
        self.servers = [self.server(port) for port in self.server_ports]
        site = site_config(self.folder, self.http_port, self.https_port, self.server_ports, self.static)
        write_nginx_conf(self.folder, site)
        self.nginx = Process(nginx_command(self.folder), self.folder / "nginx.log", self.https_port)
        for process in [*self.servers, self.nginx]:
            process.wait_until_listening()

    def server(self, port: int) -> Process:
        """One uvicorn process, as the unit's instance for `port` starts it."""
        command = [sys.executable, "-m", "uvicorn", *(word.replace("%i", str(port)) for word in self.server_arguments)]
        return Process(command, self.folder / f"uvicorn-{port}.log", port, cwd=STEP, env=self.env)

    def restart(self, index: int) -> None:
        self.servers[index] = self.server(self.server_ports[index])
        self.servers[index].wait_until_listening()

    def stop(self) -> None:
        """Ask every server to stop at once, then wait for each."""
        running = [process for process in [*self.servers, self.nginx] if process and process.process.poll() is None]
        for process in running:
            process.process.terminate()
        for process in running:
            with contextlib.suppress(subprocess.TimeoutExpired):
                process.process.wait(timeout=20)
            process.process.kill()
            process.process.wait()

    def server_logs(self) -> list[str]:
        return [process.output() for process in self.servers]

    def logged_by(self, pattern: str) -> int:
        """The index of the one uvicorn process whose log matches the regular expression, once one does."""

        def matching():
            return [index for index, log in enumerate(self.server_logs()) if re.search(pattern, log)]

        found = wait_until(matching, f"no uvicorn logged /{pattern}/", 10)
        assert len(found) == 1, f"both uvicorn processes logged /{pattern}/"
        return found[0]

    def through_nginx(self, method: str = "GET", path: str = "/", headers=None, body=None, **options) -> Reply:
        return request(self.https_port, method, path, headers, body, **{"tls": self.tls, **options})

    def log_in(self) -> SimpleCookie:
        """Log alice in through nginx as a browser does: the form's page, then the form; returns the cookies."""
        page = self.through_nginx("GET", "/accounts/login/")
        cookies = cookies_of(page)
        token = re.search(rb'name="csrfmiddlewaretoken" value="([^"]+)"', page.body).group(1).decode()
        form = urlencode({"username": "alice", "password": PASSWORD, "csrfmiddlewaretoken": token})
        headers = {
            "Cookie": f"csrftoken={cookies['csrftoken'].value}",
            "Origin": self.origin,
            "Content-Type": "application/x-www-form-urlencoded",
        }
        response = self.through_nginx("POST", "/accounts/login/", headers, form)
        assert (response.status, response.headers["Location"]) == (302, "/chat/"), response.body.decode()
        return cookies_of(response)

    def sessions(self, *usernames: str) -> list[str]:
        return kept_sessions(self.session_keys, usernames, lambda code: self.manage("shell", "-v", "0", "-c", code))

    def websocket(self, room: str, session: str, query: str = "", origin: str | None = None):
        """A socket through nginx, as the room's page opens it; the query string may name it in uvicorn's log."""
        return connect(
            f"wss://{HOST}:{self.https_port}/ws/chat/{room}/?{query}",
            host="127.0.0.1",
            ssl=self.tls,
            origin=origin or self.origin,
            additional_headers={"Cookie": f"sessionid={session}"},
            open_timeout=5,
            proxy=None,
        )


NEW_SESSIONS = """
from django.contrib.auth import get_user_model
from django.test import Client

for username in {usernames!r}:
    client = Client()
    client.force_login(get_user_model().objects.get_or_create(username=username)[0])
    print(client.cookies["sessionid"].value)
"""


def kept_sessions(known: dict[str, str], usernames: tuple[str, ...], manage_shell) -> list[str]:
    """The key of a session of each user, created if need be, as if each had logged in. One `manage.py shell -c`
    (`manage_shell`, given the code) makes those of all the users not yet in `known`, which keeps them."""
    new = [name for name in dict.fromkeys(usernames) if name not in known]
    if new:
        known.update(zip(new, manage_shell(NEW_SESSIONS.format(usernames=tuple(new))).split(), strict=True))
    return [known[name] for name in usernames]


def accepted_socket(room: str, query: str) -> str:
    """What uvicorn logs when it accepts the handshake of a socket opened with `query`."""
    return re.escape(f'"WebSocket /ws/chat/{room}/?{query}" [accepted]')


def cookies_of(response: Reply) -> SimpleCookie:
    cookies = SimpleCookie()
    for header in response.headers.get_all("Set-Cookie") or []:
        cookies.load(header)
    return cookies


def saved_messages(database: Path, room: str) -> list[tuple[int, str]]:
    """(number, client id) of every message saved in the room, by number."""
    query = """
        SELECT number, client_id FROM chat_message JOIN chat_room ON chat_room.id = chat_message.room_id
        WHERE chat_room.name = ? ORDER BY number
    """
    with contextlib.closing(sqlite3.connect(database)) as connection:
        return connection.execute(query, [room]).fetchall()


def start_redis(folder: Path, password: str) -> Process:
    """A Redis of the deployment's own, on a free port, that answers only clients that give the password."""
    try:
        server = find_redis_server(sys.executable)
    except WorkshopError as error:
        missing(str(error))
    [port] = free_ports(1)
    options = ["--bind", "127.0.0.1", "--port", str(port), "--save", "", "--requirepass", password]
    redis_server = Process([server, *options], folder / "redis.log", port, cwd=folder)
    redis_server.wait_until_listening()
    return redis_server


@pytest.fixture(scope="module")
def deployment(tmp_path_factory):
    nginx_binary()
    folder = tmp_path_factory.mktemp("deploy")
    redis_server = start_redis(folder, REDIS_PASSWORD)
    deployment = Deployment(folder, f"redis://:{REDIS_PASSWORD}@127.0.0.1:{redis_server.port}/0")
    try:
        deployment.start()
        deployment.sessions(*USERS)
        yield deployment
    finally:
        deployment.stop()
        redis_server.stop()


@pytest.fixture
def nginx_alone(tmp_path):
    """nginx with the site and no server behind it: whatever it passes on gets 502 Bad Gateway."""
    http_port, https_port, *server_ports = free_ports(4)
    certificate = write_certificate(tmp_path)
    write_nginx_conf(tmp_path, site_config(tmp_path, http_port, https_port, server_ports, tmp_path / "static"))
    nginx = Process(nginx_command(tmp_path), tmp_path / "nginx.log", https_port)
    try:
        nginx.wait_until_listening()
        yield https_port, trusting(certificate)
    finally:
        nginx.stop()


# The unit and the settings, read without starting anything.


def test_nginx_accepts_the_site(tmp_path):
    write_certificate(tmp_path)
    site = site_config(tmp_path, *free_ports(2), free_ports(2), tmp_path / "static")
    write_nginx_conf(tmp_path, site)

    result = subprocess.run(nginx_command(tmp_path, "-t"), capture_output=True, text=True)

    assert result.returncode == 0, result.stderr


def test_the_unit_starts_one_uvicorn_per_port_reachable_from_this_machine_only():
    arguments, environment = unit_settings()

    assert arguments == [
        "production_asgi:application",
        *("--host", "127.0.0.1", "--port", "%i"),
        *("--ws", "websockets-sansio", "--ws-per-message-deflate", "false", "--loop", "uvloop", "--lifespan", "off"),
        *("--proxy-headers", "--forwarded-allow-ips", "127.0.0.1"),
    ]
    assert environment["DJANGO_SETTINGS_MODULE"] == "production_settings"
    assert environment["PYTHONPATH"].endswith("/deploy")


@pytest.mark.skipif(sys.platform == "win32", reason="uvloop, the unit's loop, has no Windows release")
def test_the_benchmark_serves_uvicorn_as_the_unit_does():
    arguments, _ = unit_settings()
    command = server_command("uvicorn")
    # Where each listens, and whom the unit trusts behind nginx, differ; the benchmark has no nginx.
    own = {"--host": 1, "--port": 1, "--proxy-headers": 0, "--forwarded-allow-ips": 1}  # option: values after it

    def shared(options):
        kept, rest = [], iter(options)
        for option in rest:
            if option in own:
                for _ in range(own[option]):
                    next(rest)
            else:
                kept.append(option)
        return kept

    assert shared(command[command.index("uvicorn") + 1 : -1]) == shared(arguments[1:])


def test_the_unit_serves_the_last_step_once_redis_has_started():
    unit = unit_lines()

    assert PurePosixPath(unit["WorkingDirectory"][0]).name == STEPS[-1]
    assert "redis-server.service" in unit["Wants"][0].split()
    assert "redis-server.service" in unit["After"][0].split()


def test_the_unit_leaves_the_drain_more_time_than_a_save_waits_for_the_database():
    # Step 08's settings leave SQLite's 5-second wait for the write lock as it is.
    assert int(unit_lines()["TimeoutStopSec"][0]) > 5


def test_the_unit_lets_a_process_hold_many_sockets_and_bounds_its_memory():
    unit = unit_lines()

    assert int(unit["LimitNOFILE"][0]) >= 65536, "each socket is an open file"
    assert re.fullmatch(r"[0-9]+[MG]", unit["MemoryMax"][0])


def test_the_unit_may_write_the_databases_folder_and_no_other():
    unit = unit_lines()
    database_folder = str(PurePosixPath(example_environment()["DJANGO_SQLITE_PATH"]).parent)

    assert unit["ProtectSystem"] == ["strict"]
    assert unit["ReadWritePaths"] == [database_folder]
    assert {unit[name][0] for name in ("NoNewPrivileges", "ProtectHome", "PrivateTmp")} == {"yes"}
    assert set(unit["ReadOnlyPaths"][0].split()) >= {
        str(PurePosixPath(unit["WorkingDirectory"][0]).parent.parent),
        example_environment()["DJANGO_STATIC_ROOT"],
    }


def test_the_session_cleaner_runs_as_the_chat_does():
    unit, cleaner = unit_lines(), unit_lines(CLEANER)
    shared = ["User", "Group", "WorkingDirectory", "Environment", "EnvironmentFile", "ProtectSystem", "ReadWritePaths"]

    assert {name: cleaner.get(name) for name in shared} == {name: unit[name] for name in shared}
    assert cleaner["ExecStart"][0].split()[1:] == ["manage.py", "clearsessions"]
    assert unit_lines(CLEANER.with_suffix(".timer"))["OnCalendar"] == ["daily"]


def settings_check(tmp_path: Path, **changes: str) -> subprocess.CompletedProcess:
    """`manage.py check` of the step with the production settings, the unit's variables and the example's values
    (a new key in place of the example's), changed by `changes`."""
    _, unit_environment = unit_settings()
    values = {
        **example_environment(),
        "DJANGO_SECRET_KEY": secrets.token_urlsafe(50),
        "DJANGO_STATIC_ROOT": str(tmp_path / "static"),
        "DJANGO_SQLITE_PATH": str(tmp_path / "db.sqlite3"),
        "REDIS_URL": f"redis://:{REDIS_PASSWORD}@127.0.0.1:6379/0",
        **changes,
    }
    env = {**os.environ, **unit_environment, **values, "PYTHONPATH": str(DEPLOY)}
    return subprocess.run([sys.executable, "manage.py", "check"], cwd=STEP, env=env, capture_output=True, text=True)


def test_the_production_settings_accept_a_new_key_and_the_hosts_named(tmp_path):
    result = settings_check(tmp_path, DJANGO_ALLOWED_HOSTS=f"{HOST},www.{HOST}")

    assert result.returncode == 0, result.stderr


@pytest.mark.parametrize("whose", ["environment.example", "the step"])
def test_the_production_settings_refuse_a_secret_key_from_the_repository(tmp_path, whose):
    step_key = re.search(r"^SECRET_KEY = '([^']+)'", (STEP / "mysite/settings.py").read_text(), re.MULTILINE)[1]
    key = example_environment()["DJANGO_SECRET_KEY"] if whose == "environment.example" else step_key

    result = settings_check(tmp_path, DJANGO_SECRET_KEY=key)

    assert result.returncode != 0
    assert "ImproperlyConfigured: DJANGO_SECRET_KEY is a key anyone can read in the repository" in result.stderr


@pytest.mark.parametrize("hosts", ["*", f"{HOST},*"])
def test_the_production_settings_refuse_any_host(tmp_path, hosts):
    result = settings_check(tmp_path, DJANGO_ALLOWED_HOSTS=hosts)

    assert result.returncode != 0
    assert "ImproperlyConfigured: DJANGO_ALLOWED_HOSTS contains *" in result.stderr


@pytest.mark.parametrize(
    "urls",
    [
        {"REDIS_URL": "redis://127.0.0.1:6379/0"},
        {"REDIS_URL": example_environment()["REDIS_URL"]},
        {"REDIS_URLS": f"redis://:{REDIS_PASSWORD}@10.0.0.1:6379/0,redis://10.0.0.2:6379/0"},
    ],
    ids=["none", "environment.example's", "one of two"],
)
def test_the_production_settings_refuse_a_redis_without_a_password_of_its_own(tmp_path, urls):
    result = settings_check(tmp_path, **urls)

    assert result.returncode != 0
    assert "has no password of its own: whoever can reach it could publish chat messages" in result.stderr


# nginx's own rules, with no server behind it.


def test_nginx_limits_how_fast_one_address_tries_to_log_in(nginx_alone):
    port, tls = nginx_alone

    statuses = [request(port, "POST", "/accounts/login/", tls=tls).status for _ in range(20)]

    assert statuses[0] == 502, "nginx refused the first login at once"
    assert 429 in statuses, f"nginx passed on 20 logins in a row: {statuses}"


def test_nginx_limits_how_fast_one_address_opens_sockets(nginx_alone):
    port, tls = nginx_alone

    statuses = [request(port, "GET", "/ws/chat/lobby/", tls=tls).status for _ in range(60)]

    assert statuses[0] == 502, "nginx refused the first handshake at once"
    assert 429 in statuses, f"nginx passed on 60 handshakes in a row: {statuses}"


# The whole deployment.


def test_plain_http_is_sent_to_https(deployment):
    response = request(deployment.http_port, "GET", "/chat/lobby/")

    assert (response.status, response.headers["Location"]) == (301, f"https://{HOST}/chat/lobby/")


def test_certbots_challenges_are_answered_over_plain_http(deployment):
    challenges = deployment.folder / "webroot/.well-known/acme-challenge"
    challenges.mkdir(parents=True, exist_ok=True)
    (challenges / "a-token").write_text("a-token.a-key")

    response = request(deployment.http_port, "GET", "/.well-known/acme-challenge/a-token")

    assert (response.status, response.body) == (200, b"a-token.a-key")


def test_the_session_cleaner_runs_with_the_production_settings(deployment):
    program, *arguments = unit_lines(CLEANER)["ExecStart"][0].split()

    assert program.endswith("/python")
    deployment.manage(*arguments[1:])


def test_other_host_names_get_no_answer_over_plain_http(deployment):
    with pytest.raises(http.client.RemoteDisconnected):
        request(deployment.http_port, "GET", "/chat/lobby/", host="unknown.example.org")


def test_other_host_names_get_no_tls_handshake(deployment):
    with pytest.raises(ssl.SSLError, match="UNRECOGNIZED_NAME|unrecognized name"):
        deployment.through_nginx("GET", "/chat/lobby/", host="unknown.example.org", server_name="unknown.example.org")


def test_another_host_name_over_the_sites_tls_gets_no_answer(deployment):
    with pytest.raises(http.client.RemoteDisconnected):
        deployment.through_nginx("GET", "/accounts/login/", host="unknown.example.org")


@pytest.mark.filterwarnings("ignore:ssl.TLSVersion.TLSv1_1 is deprecated:DeprecationWarning")
def test_tls_before_1_2_gets_no_handshake(deployment):
    old = trusting(deployment.folder / "certificate.pem")
    old.minimum_version = old.maximum_version = ssl.TLSVersion.TLSv1_1
    old.set_ciphers("DEFAULT:@SECLEVEL=0")

    with pytest.raises(ssl.SSLError) as refused:
        deployment.through_nginx("GET", "/accounts/login/", tls=old)

    if "NO_PROTOCOLS_AVAILABLE" in str(refused.value) or "UNSUPPORTED_PROTOCOL" in str(refused.value):
        pytest.skip(f"this Python's OpenSSL cannot offer TLS 1.1 at all: {refused.value}")
    assert "TLSV1_ALERT_PROTOCOL_VERSION" in str(refused.value), "the refusal did not come from nginx"


@pytest.mark.parametrize("path", ["/accounts/login/", "/static/chat/room.js", "/no-such-page/"])
def test_https_answers_tell_browsers_to_use_https_alone(deployment, path):
    response = deployment.through_nginx("GET", path)

    max_age = re.fullmatch(r"max-age=(\d+)", response.headers["Strict-Transport-Security"] or "")
    assert max_age and int(max_age[1]) > 0, response.headers


def test_static_files_come_from_nginx_not_uvicorn(deployment):
    room_js = (STEP / "chat/static/chat/room.js").read_bytes()

    through_nginx = deployment.through_nginx("GET", "/static/chat/room.js")
    from_uvicorn = request(deployment.server_ports[0], "GET", "/static/chat/room.js")

    assert (through_nginx.status, through_nginx.body) == (200, room_js)
    assert from_uvicorn.status == 404


def test_logging_in_through_nginx_passes_the_csrf_check_and_sets_secure_cookies(deployment):
    cookies = deployment.log_in()

    assert cookies["sessionid"].value
    assert cookies["sessionid"]["secure"] and cookies["sessionid"]["httponly"]


def test_the_production_settings_leave_no_deployment_warning(deployment):
    output = deployment.manage("check", "--deploy")

    assert re.findall(r"\(security\.\w+\)", output) == []


def logged_client(deployment: Deployment, path: str) -> str:
    """The client address uvicorn logged for a request of `path`."""
    index = deployment.logged_by(re.escape(f'"GET {path} HTTP/1.1"'))
    line = next(line for line in deployment.server_logs()[index].splitlines() if f'"GET {path} HTTP/1.1"' in line)
    return re.search(r"(\S+):\d+ - \"GET", line)[1]


def test_uvicorn_believes_forwarded_addresses_from_this_machine_and_nginx_replaces_the_clients(deployment):
    forged = {"X-Forwarded-For": FORGED_ADDRESS}
    direct, proxied = f"/direct-{secrets.token_hex(6)}/", f"/proxied-{secrets.token_hex(6)}/"

    request(deployment.server_ports[0], "GET", direct, forged)
    deployment.through_nginx("GET", proxied, forged)

    assert logged_client(deployment, direct) == FORGED_ADDRESS
    assert logged_client(deployment, proxied) == "127.0.0.1"


@pytest.mark.skipif(sys.platform != "linux", reason="only Linux answers on every address of 127.0.0.0/8")
def test_uvicorn_believes_forwarded_addresses_from_nginx_only(deployment):
    forged = {"X-Forwarded-For": FORGED_ADDRESS}
    direct, proxied = f"/direct-{secrets.token_hex(6)}/", f"/proxied-{secrets.token_hex(6)}/"

    request(deployment.server_ports[0], "GET", direct, forged, source="127.0.0.2")
    deployment.through_nginx("GET", proxied, forged, source="127.0.0.2")

    assert logged_client(deployment, direct) == "127.0.0.2", "uvicorn believed a client that is not nginx"
    assert logged_client(deployment, proxied) == "127.0.0.2", "uvicorn did not believe nginx about the client"


def test_redis_answers_only_the_chats_processes(deployment):
    """Whoever can reach Redis without the password cannot publish forged chat events."""
    port = urlsplit(deployment.env["REDIS_URL"]).port
    with socket.create_connection(("127.0.0.1", port)) as connection:
        connection.sendall(b"PUBLISH asgi__group__chat_lobby forged\r\n")
        assert connection.recv(100).startswith(b"-NOAUTH")


@pytest.mark.parametrize("other", ["plain http", "another port"])
def test_a_socket_from_another_origin_of_the_sites_host_is_refused(deployment, other):
    session = deployment.sessions("alice")[0]
    origin = {
        "plain http": f"http://{HOST}:{deployment.https_port}",
        "another port": f"https://{HOST}:{deployment.https_port + 1}",
    }[other]

    async def open_socket(origin: str):
        async with deployment.websocket("lobby", session, origin=origin):
            pass

    asyncio.run(open_socket(deployment.origin))
    with pytest.raises(InvalidStatus) as refused:
        asyncio.run(open_socket(origin))
    assert refused.value.response.status_code == 403


def test_a_message_through_nginx_reaches_a_socket_on_the_other_uvicorn(deployment):
    session = deployment.log_in()["sessionid"].value
    room = f"deploy_{secrets.token_hex(6)}"

    async def chat():
        async with deployment.websocket(room, session, "socket=first") as first:
            first_server = deployment.logged_by(accepted_socket(room, "socket=first"))
            async with deployment.websocket(room, session, "socket=second") as second:
                second_server = deployment.logged_by(accepted_socket(room, "socket=second"))
                assert first_server != second_server, "nginx sent both sockets to the same uvicorn"

                await first.send(json.dumps({"message": "through nginx", "client_id": "deploy-1"}))

                for socket_ in (second, first):
                    [message] = json.loads(await asyncio.wait_for(socket_.recv(), 5))["messages"]
                    assert (message["message"], message["client_id"]) == ("through nginx", "deploy-1")

    asyncio.run(chat())


class Page:
    """room.js's side of step 08's protocol, through nginx: gives each message an id and keeps it until the server's
    frame for it comes back, sends those again after a reconnect, and records every number and close code. Each
    handshake names the page and its count in the query string, so uvicorn's log says which process took it."""

    def __init__(self, deployment: Deployment, name: str, room: str, session: str):
        self.deployment, self.name, self.room, self.session = deployment, name, room, session
        self.last_number = 0  # every message up to it has arrived
        self.numbers: set[int] = set()
        self.unsaved: dict[str, str] = {}  # client id: text
        self.acknowledged = 0
        self.errors: list[dict] = []
        self.ids = (f"{name}-{number}" for number in itertools.count(1))
        self.queries: list[str] = []  # the query string of each handshake
        self.close_codes: list[int] = []
        self.socket = None
        self.open = asyncio.Event()

    async def stay_connected(self):
        """Connects, reconnects when the socket closes, and reads; until cancelled."""
        while True:
            query = f"after={self.last_number}&page={self.name}.{len(self.queries) + 1}"
            self.queries.append(query)
            try:
                async with self.deployment.websocket(self.room, self.session, query) as socket_:
                    self.socket = socket_
                    for client_id, text in list(self.unsaved.items()):
                        await socket_.send(json.dumps({"message": text, "client_id": client_id}))
                    self.open.set()
                    async for frame in socket_:
                        self.read(json.loads(frame))
            except (OSError, InvalidHandshake, ConnectionClosed):
                pass
            self.open.clear()
            if self.socket is None:
                await asyncio.sleep(0.5)  # the handshake failed: try again after a while, as room.js does
            else:
                self.close_codes.append(self.socket.close_code)
                self.socket = None

    def read(self, frame: dict):
        if "messages" not in frame:
            self.errors.append(frame)
        for message in frame.get("messages", []):
            self.numbers.add(message["number"])
            while self.last_number + 1 in self.numbers:
                self.last_number += 1
            if self.unsaved.pop(message["client_id"], None) is not None:
                self.acknowledged += 1

    async def send_steadily(self, count: int):
        for number in range(count):
            client_id = next(self.ids)
            self.unsaved[client_id] = f"{self.name} says {number}"
            await self.open.wait()
            with contextlib.suppress(ConnectionClosed):  # sent again once it has reconnected
                await self.socket.send(json.dumps({"message": self.unsaved[client_id], "client_id": client_id}))
            await asyncio.sleep(1 / SENDING_RATE)  # the pace of someone typing, under the send limit


def test_a_rolling_restart_loses_no_message_and_moves_the_pages_to_the_other_uvicorn(deployment):
    room = f"restart_{secrets.token_hex(6)}"
    total = PAGES * MESSAGES_EACH
    # Each page a user of its own: the send limit counts all the sockets of one user together.
    pages = [
        Page(deployment, name, room, session)
        for name, session in zip(PAGE_USERS, deployment.sessions(*PAGE_USERS), strict=True)
    ]

    async def restart_one_process_while_they_chat():
        readers = []
        try:
            for page in pages:
                readers.append(asyncio.create_task(page.stay_connected()))
                await asyncio.wait_for(page.open.wait(), 10)
            servers = {page: deployment.logged_by(accepted_socket(room, page.queries[0])) for page in pages}
            sending = asyncio.gather(*(page.send_steadily(MESSAGES_EACH) for page in pages))
            await wait_until_async(
                lambda: sum(page.acknowledged for page in pages) >= total / 4, "few messages came back", 10
            )

            stopped = await asyncio.to_thread(deployment.servers[0].stop)

            await asyncio.wait_for(sending, 20)
            await wait_until_async(lambda: not any(page.unsaved for page in pages), "some messages never came back", 20)
            await wait_until_async(
                lambda: all(page.last_number == total for page in pages), "a page lacks messages", 10
            )
            return servers, stopped
        finally:
            for reader in readers:
                reader.cancel()
            await asyncio.gather(*readers, return_exceptions=True)

    try:
        servers, stopped = asyncio.run(restart_one_process_while_they_chat())
    finally:
        deployment.restart(0)

    moved = [page for page in pages if servers[page] == 0]
    stayed = [page for page in pages if servers[page] == 1]
    assert moved and stayed, "nginx sent every socket to one uvicorn"
    assert stopped == STOPPED_BY_SIGTERM, "uvicorn did not stop by itself once it had drained"
    assert [page.close_codes for page in moved] == [[SERVICE_RESTART]] * len(moved)
    assert [len(page.queries) for page in stayed] == [1] * len(stayed), "a page on the other uvicorn reconnected"
    assert [deployment.logged_by(accepted_socket(room, page.queries[1])) for page in moved] == [1] * len(moved)
    assert [page.errors for page in pages] == [[]] * len(pages)
    saved = saved_messages(deployment.database, room)
    assert [number for number, _ in saved] == list(range(1, total + 1))
    assert sorted(client_id for _, client_id in saved) == sorted(
        f"{page.name}-{number}" for page in pages for number in range(1, MESSAGES_EACH + 1)
    )


class PageThatStopsReading:
    """A socket straight to the first uvicorn, as nginx passes one on, whose page reads nothing until it is told to.

    Its receive buffer is small, so uvicorn's fills after a few frames. (Through nginx, nginx's buffers would hold
    megabytes first, and its send_timeout drops a client that takes nothing for a minute.)"""

    def __init__(self, deployment: Deployment, room: str, session: str):
        self.connection = socket.socket()
        self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        self.connection.settimeout(10)
        self.connection.connect(("127.0.0.1", deployment.server_ports[0]))
        uri = parse_uri(f"ws://{HOST}:{deployment.https_port}/ws/chat/{room}/")
        self.protocol = ClientProtocol(uri, origin=deployment.origin, max_size=None)
        request = self.protocol.connect()
        request.headers["Cookie"] = f"sessionid={session}"
        request.headers["X-Forwarded-Proto"] = "https"
        self.protocol.send_request(request)
        self.connection.sendall(b"".join(self.protocol.data_to_send()))
        while self.protocol.state is State.CONNECTING:
            self.protocol.receive_data(self.connection.recv(4096))
        assert self.protocol.state is State.OPEN, self.protocol.handshake_exc

    def read_until_closed(self) -> tuple[list[dict], int]:
        """Every text frame the server had sent, and the code of its close."""
        texts = []
        while True:
            self.protocol.receive_data(self.connection.recv(1 << 16))
            for frame in self.protocol.events_received():
                if not isinstance(frame, Frame):
                    continue  # the handshake's response
                if frame.opcode is Opcode.TEXT:
                    texts.append(json.loads(frame.data))
                elif frame.opcode is Opcode.CLOSE:
                    self.connection.close()
                    return texts, Close.parse(frame.data).code


async def read_everything(socket_) -> None:
    async for _ in socket_:
        pass


def test_a_socket_whose_page_reads_nothing_leaves_the_room_and_is_closed_once_it_reads(deployment):
    room = f"unread_{secrets.token_hex(6)}"
    reader, *senders = deployment.sessions(READER, *SENDERS)
    page = PageThatStopsReading(deployment, room, reader)
    # As long as a message may be, and each character takes 12 bytes in a frame, as \ud83d\ude00: what the kernel
    # buffers for the page, megabytes, fills within seconds.
    text = "\N{GRINNING FACE}" * 1000
    given_up = r"chat_unread_\w+: a socket's page read nothing for 10 seconds"
    sent = itertools.count(1)

    async def send_until_the_server_gives_up(session: str):
        async with deployment.websocket(room, session) as socket_:
            reading = asyncio.create_task(read_everything(socket_))
            try:
                while not any(re.search(given_up, log) for log in deployment.server_logs()):
                    await socket_.send(json.dumps({"message": text, "client_id": f"unread-{next(sent)}"}))
                    await asyncio.sleep(1 / SENDING_RATE)
            finally:
                reading.cancel()

    async def send_from_each():
        await asyncio.gather(*(send_until_the_server_gives_up(session) for session in senders))

    try:
        asyncio.run(asyncio.wait_for(send_from_each(), 40))
    except TimeoutError:
        pytest.fail(f"no uvicorn logged /{given_up}/ within 40 seconds:\n{deployment.server_logs()[0]}")
    texts, code = page.read_until_closed()

    assert deployment.logged_by(given_up) == 0
    assert code == FELL_BEHIND
    assert texts[-1] == {"error": "This connection fell 10 seconds behind; reconnect."}
    numbers = [message["number"] for frame in texts[:-1] for message in frame["messages"]]
    assert numbers == list(range(1, len(numbers) + 1)) and len(numbers) < next(sent) - 1
