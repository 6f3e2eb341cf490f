"""The deployment in deploy/ works as docs/deploy.md says: nginx with its site, in front of two daphne processes of
step 05 started the way the systemd unit starts them, with the production settings and one Redis."""

import asyncio
import contextlib
import datetime
import http.client
import ipaddress
import json
import os
import re
import secrets
import shutil
import ssl
import subprocess
import sys
import time
import uuid
from http.cookies import SimpleCookie
from pathlib import Path
from typing import NamedTuple
from urllib.parse import urlencode

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
from websockets.asyncio.client import connect

from bench.bench import accepts_connections, free_port
from helpers import missing
from workshop import ROOT, STEPS_DIR, WorkshopError, redis_environment

DEPLOY = ROOT / "deploy"
STEP = STEPS_DIR / "06_production"
SITE = DEPLOY / "nginx.conf"
UNIT = DEPLOY / "daphne@.service"
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


def nginx_binary() -> str:
    # Debian puts nginx in /usr/sbin, which is not on every user's PATH.
    found = shutil.which("nginx", path=os.pathsep.join([os.environ.get("PATH", ""), "/usr/sbin", "/usr/local/sbin"]))
    if not found:
        missing(NGINX_MISSING)
    return found


def replace_once(text: str, old: str, new: str, name: str) -> str:
    assert text.count(old) == 1, f"{name} no longer has `{old}` exactly once, which this test replaces"
    return text.replace(old, new)


def site_config(folder: Path, http_port: int, https_port: int, daphne_ports: list[int], static: Path) -> str:
    """deploy/nginx.conf with this machine's ports, certificate and static folder in place of the server's."""
    text = SITE.read_text(encoding="utf-8")
    replacements = {
        "listen 80;": f"listen 127.0.0.1:{http_port};",
        "listen 443 ssl;": f"listen 127.0.0.1:{https_port} ssl;",
        "server 127.0.0.1:8001;": f"server 127.0.0.1:{daphne_ports[0]};",
        "server 127.0.0.1:8002;": f"server 127.0.0.1:{daphne_ports[1]};",
        "/etc/letsencrypt/live/chat.example.com/fullchain.pem;": f"{folder}/certificate.pem;",
        "/etc/letsencrypt/live/chat.example.com/privkey.pem;": f"{folder}/key.pem;",
        "alias /srv/chat/static/;": f"alias {static}/;",
    }
    for old, new in replacements.items():
        text = replace_once(text, old, new, "deploy/nginx.conf")
    return text


def write_certificate(folder: Path) -> Path:
    """A self-signed certificate for 127.0.0.1 with its key, where the site expects them; returns the certificate."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = datetime.datetime.now(datetime.UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), False)
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


def unit_settings() -> tuple[list[str], dict[str, str]]:
    """The daphne arguments after the program in the unit's ExecStart, and the variables of its Environment line."""
    lines = UNIT.read_text(encoding="utf-8").splitlines()
    program, *arguments = next(line for line in lines if line.startswith("ExecStart=")).split("=", 1)[1].split()
    assert program.endswith("/daphne"), f"the unit starts {program}, not daphne"
    variables = next(line for line in lines if line.startswith("Environment=")).split("=", 1)[1].split()
    return arguments, dict(variable.split("=", 1) for variable in variables)


def example_environment() -> dict[str, str]:
    lines = ENVIRONMENT.read_text(encoding="utf-8").splitlines()
    return dict(line.split("=", 1) for line in lines if line.strip() and not line.startswith("#"))


def wait_until(condition, what: str, seconds: float = 10):
    deadline = time.monotonic() + seconds
    while not condition():
        if time.monotonic() > deadline:
            pytest.fail(f"{what} within {seconds} seconds")
        time.sleep(0.05)


class Reply(NamedTuple):
    status: int
    headers: http.client.HTTPMessage
    body: bytes


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

    def wait_for_exit(self) -> None:
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


class Deployment:
    """nginx on free ports in front of two daphne processes, as deploy/ sets them up, and how to talk to it."""

    def __init__(self, folder: Path, redis_url: str):
        self.folder = folder
        self.http_port, self.https_port = free_port(), free_port()
        self.daphne_ports = [free_port(), free_port()]
        self.origin = f"https://127.0.0.1:{self.https_port}"
        self.static = folder / "static"
        self.tls = ssl.create_default_context(cafile=write_certificate(folder))
        arguments, unit_environment = unit_settings()
        self.daphne_arguments = arguments
        self.env = {
            **os.environ,
            **{name: value for name, value in unit_environment.items() if name != "PYTHONPATH"},
            **self.server_environment(redis_url),
            "PYTHONPATH": str(DEPLOY),
            "PYTHONUNBUFFERED": "1",
        }
        self.processes: list[Process] = []

    def server_environment(self, redis_url: str) -> dict[str, str]:
        """deploy/environment.example's variables, with values for this machine."""
        values = {
            "DJANGO_SECRET_KEY": secrets.token_urlsafe(50),
            "DJANGO_ALLOWED_HOSTS": "127.0.0.1",
            "DJANGO_STATIC_ROOT": str(self.static),
            "DJANGO_SQLITE_PATH": str(self.folder / "db.sqlite3"),
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
        for port in self.daphne_ports:
            command = [
                sys.executable,
                "-m",
                "daphne",
                *(word.replace("%i", str(port)) for word in self.daphne_arguments),
            ]
            self.processes.append(Process(command, self.folder / f"daphne-{port}.log", port, cwd=STEP, env=self.env))
        site = site_config(self.folder, self.http_port, self.https_port, self.daphne_ports, self.static)
        write_nginx_conf(self.folder, site)
        self.processes.append(Process(nginx_command(self.folder), self.folder / "nginx.log", self.https_port))
        for process in self.processes:
            process.wait_until_listening()

    def stop(self) -> None:
        """Ask every server to stop at once, then wait for each: daphne takes a moment to close."""
        for process in self.processes:
            process.process.terminate()
        for process in self.processes:
            process.wait_for_exit()

    def daphne_logs(self) -> list[str]:
        return [process.output() for process in self.processes[:2]]

    def request(self, method: str, path: str, headers=None, body=None, port=None) -> Reply:
        """One request: through nginx over HTTPS, or plain HTTP to the port given."""
        if port is None:
            connection = http.client.HTTPSConnection("127.0.0.1", self.https_port, context=self.tls, timeout=10)
        else:
            connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        connection.request(method, path, body=body, headers=headers or {})
        response = connection.getresponse()
        reply = Reply(response.status, response.headers, response.read())
        connection.close()
        return reply

    def log_in(self) -> SimpleCookie:
        """Log alice in through nginx as a browser does: the form's page, then the form; returns the cookies."""
        page = self.request("GET", "/accounts/login/")
        cookies = cookies_of(page)
        token = re.search(rb'name="csrfmiddlewaretoken" value="([^"]+)"', page.body).group(1).decode()
        form = urlencode({"username": "alice", "password": PASSWORD, "csrfmiddlewaretoken": token})
        headers = {
            "Cookie": f"csrftoken={cookies['csrftoken'].value}",
            "Origin": self.origin,
            "Content-Type": "application/x-www-form-urlencoded",
        }
        response = self.request("POST", "/accounts/login/", headers, form)
        assert (response.status, response.headers["Location"]) == (302, "/chat/"), response.body.decode()
        return cookies_of(response)

    def websocket(self, room: str, session: str):
        return connect(
            f"wss://127.0.0.1:{self.https_port}/ws/chat/{room}/",
            ssl=self.tls,
            origin=self.origin,
            additional_headers={"Cookie": f"sessionid={session}"},
            open_timeout=5,
        )


def cookies_of(response: Reply) -> SimpleCookie:
    cookies = SimpleCookie()
    for header in response.headers.get_all("Set-Cookie") or []:
        cookies.load(header)
    return cookies


@pytest.fixture(scope="module")
def deployment(tmp_path_factory):
    nginx_binary()
    with contextlib.ExitStack() as stack:
        try:
            env = stack.enter_context(redis_environment(sys.executable, True))
        except WorkshopError as error:
            missing(str(error))
        deployment = Deployment(tmp_path_factory.mktemp("deploy"), env["REDIS_URL"])
        stack.callback(deployment.stop)
        deployment.start()
        yield deployment


def test_nginx_accepts_the_site(tmp_path):
    write_certificate(tmp_path)
    site = site_config(tmp_path, free_port(), free_port(), [free_port(), free_port()], tmp_path / "static")
    write_nginx_conf(tmp_path, site)

    result = subprocess.run(nginx_command(tmp_path, "-t"), capture_output=True, text=True)

    assert result.returncode == 0, result.stderr


def test_the_unit_starts_one_daphne_per_port_reachable_from_this_machine_only():
    arguments, environment = unit_settings()

    assert arguments == ["-b", "127.0.0.1", "-p", "%i", "--proxy-headers", "mysite.asgi:application"]
    assert environment["DJANGO_SETTINGS_MODULE"] == "production_settings"
    assert environment["PYTHONPATH"].endswith("/deploy")


def test_plain_http_is_sent_to_https(deployment):
    response = deployment.request("GET", "/chat/lobby/", port=deployment.http_port)

    assert (response.status, response.headers["Location"]) == (301, "https://127.0.0.1/chat/lobby/")


def test_static_files_come_from_nginx_not_daphne(deployment):
    room_js = (STEP / "chat/static/chat/room.js").read_bytes()

    through_nginx = deployment.request("GET", "/static/chat/room.js")
    from_daphne = deployment.request("GET", "/static/chat/room.js", port=deployment.daphne_ports[0])

    assert (through_nginx.status, through_nginx.body) == (200, room_js)
    assert from_daphne.status == 404


def test_logging_in_through_nginx_passes_the_csrf_check_and_sets_secure_cookies(deployment):
    cookies = deployment.log_in()

    assert cookies["sessionid"].value
    assert cookies["sessionid"]["secure"] and cookies["sessionid"]["httponly"]


def test_the_production_settings_leave_one_deployment_warning_hsts(deployment):
    output = deployment.manage("check", "--deploy")

    assert re.findall(r"\(security\.\w+\)", output) == ["(security.W004)"]


def test_daphne_believes_forwarded_addresses_but_nginx_replaces_the_clients(deployment):
    forged = {"X-Forwarded-For": "203.0.113.7"}
    direct, proxied = f"/direct-{uuid.uuid4().hex}/", f"/proxied-{uuid.uuid4().hex}/"

    deployment.request("GET", direct, forged, port=deployment.daphne_ports[0])
    deployment.request("GET", proxied, forged)

    def line(path):
        return next(
            (line for log in deployment.daphne_logs() for line in log.splitlines() if f'"GET {path}"' in line), None
        )

    wait_until(lambda: line(direct) and line(proxied), "daphne did not log both requests")
    assert line(direct).startswith("203.0.113.7:")
    assert line(proxied).startswith("127.0.0.1:")


def test_a_message_through_nginx_reaches_a_socket_on_the_other_daphne(deployment):
    session = deployment.log_in()["sessionid"].value
    room = f"deploy_{uuid.uuid4().hex[:12]}"

    def connections():
        return [log.count(f'"WSCONNECT /ws/chat/{room}/"') for log in deployment.daphne_logs()]

    async def chat():
        async with deployment.websocket(room, session) as first:
            await asyncio.to_thread(wait_until, lambda: sum(connections()) == 1, "daphne did not log the socket")
            async with deployment.websocket(room, session) as second:
                await asyncio.to_thread(wait_until, lambda: sum(connections()) == 2, "daphne did not log the socket")
                assert connections() == [1, 1], "nginx sent both sockets to the same daphne"

                await first.send(json.dumps({"message": "through nginx"}))

                assert json.loads(await asyncio.wait_for(second.recv(), 5))["message"] == "through nginx"
                assert json.loads(await asyncio.wait_for(first.recv(), 5))["message"] == "through nginx"

    asyncio.run(chat())
