"""Real servers in child processes: daphne serving this step, and a private redis-server."""

import asyncio
import os
import shutil
import subprocess
import sys
import time
from contextlib import ExitStack, contextmanager
from pathlib import Path

import pytest
import redis
from django.conf import settings

from browser import accepts_connections, free_port, missing

STEP = Path(__file__).resolve().parent.parent


def wait_until_listening(port, process, log, seconds=20):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if process.poll() is not None:
            pytest.fail(f"{process.args[0]} exited at start:\n{log.read_text(errors='replace')}")
        if accepts_connections(port):
            return
        time.sleep(0.05)
    pytest.fail(f"nothing listened on port {port} within {seconds} seconds:\n{log.read_text(errors='replace')}")


@contextmanager
def child_process(command, port, log, env=None, wait=True):
    """Runs command until the block ends; with wait, the block starts once the process listens on port."""
    with open(log, "ab") as output:
        process = subprocess.Popen(command, cwd=STEP, env=env, stdout=output, stderr=subprocess.STDOUT)
    try:
        if wait:
            wait_until_listening(port, process, log)
        yield process
    finally:
        process.terminate()
        try:
            process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


@contextmanager
def daphne(tmp_path, redis_url, site, settings_module=None, options=()):
    """Serve this step with daphne on a free port, with the database of `site` and extra command-line options.

    Yields the ws:// base URL.
    """
    with daphnes(1, tmp_path, redis_url, site, settings_module, options) as [url]:
        yield url


@contextmanager
def daphnes(count, tmp_path, redis_url, site, settings_module=None, options=()):
    """Serve this step with `count` daphne processes started together, sharing Redis and the database of `site`.

    Yields their ws:// base URLs.
    """
    env = {
        **site.env,
        "REDIS_URL": redis_url,
        "DJANGO_SETTINGS_MODULE": settings_module or site.env["DJANGO_SETTINGS_MODULE"],
        "PYTHONPATH": os.pathsep.join([str(STEP), site.env["PYTHONPATH"], str(tmp_path)]),
    }
    with start_daphnes(count, tmp_path, env, options) as urls:
        yield urls


@contextmanager
def start_daphnes(count, tmp_path, env, options):
    """Starts them all, then waits for each: loading the project takes a daphne about a second."""
    ports = [free_port() for _ in range(count)]
    with ExitStack() as stack:
        started = []
        for port in ports:
            command = [sys.executable, "-m", "daphne", "-b", "127.0.0.1", "-p", str(port), *options]
            log = tmp_path / f"daphne-{port}.log"
            process = stack.enter_context(child_process([*command, "mysite.asgi:application"], port, log, env, False))
            started.append((port, process, log))
        for port, process, log in started:
            wait_until_listening(port, process, log)
        yield [f"ws://127.0.0.1:{port}" for port in ports]


LOG_IN = """
from django.contrib.auth import get_user_model
from django.test import Client

for username in {usernames!r}:
    client = Client()
    client.force_login(get_user_model().objects.get_or_create(username=username)[0])
    print(client.cookies.output(attrs=[], header="", sep=";").strip())
"""


def session_cookies(site, *usernames):
    """The cookie headers of a new session of each user (created if need be) in the database of `site`."""
    return site.manage("shell", "-v", "0", "-c", LOG_IN.format(usernames=usernames)).stdout.splitlines()


def session_cookie(site, username):
    return session_cookies(site, username)[0]


@pytest.fixture(scope="session")
def site_cookie(site):
    """A session cookie for the servers in child processes, which use the database of `site`.

    Its user is none of the demo users, so nothing the browser tests do with their accounts can end its session.
    """
    return session_cookie(site, "carol")


@pytest.fixture(scope="session")
def daphne_servers(tmp_path_factory, site):
    """Two daphne processes serving this step with the suite's Redis, for the tests that only need a server to reach.

    The tests share them, since starting a daphne takes about a second. Yields their ws:// base URLs.
    """
    with daphnes(2, tmp_path_factory.mktemp("daphne_servers"), settings.REDIS_URL, site) as urls:
        yield urls


def room_subscriptions(redis_url, room_name):
    """How many processes listen to the room: each subscribes once to its group channel in Redis."""
    channel = f"asgi__group__chat_{room_name}"
    with redis.Redis.from_url(redis_url, decode_responses=True) as client:
        return dict(client.pubsub_numsub(channel))[channel]


async def eventually(condition, seconds=5):
    """Waits until condition() is true, checking every 50 ms; fails after seconds."""
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, f"still false after {seconds} seconds"
        await asyncio.sleep(0.05)


def redis_server_binary():
    binary = os.environ.get("REDIS_SERVER") or shutil.which("redis-server") or shutil.which("valkey-server")
    if not binary:
        message = (
            "no redis-server or valkey-server: run `python workshop.py test` from the repository root, which finds "
            "or installs one, or install Redis."
        )
        missing(message)
    return binary


class PrivateRedis:
    """A redis-server of the test's own, which it may stop and start again on the same port."""

    def __init__(self, tmp_path):
        self.port = free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.command = [redis_server_binary(), "--bind", "127.0.0.1", "--port", str(self.port), "--save", ""]
        self.log = tmp_path / f"redis-{self.port}.log"
        self.running = None

    def start(self):
        self.running = child_process(self.command, self.port, self.log)
        self.running.__enter__()

    def stop(self):
        self.running.__exit__(None, None, None)
        self.running = None

    def __enter__(self):
        self.start()
        return self

    def __exit__(self, *exc_info):
        if self.running:
            self.stop()
