"""Fixtures for the tests that use the chat in a real browser: headless Chromium against the step served by daphne.

Every step has this same file. The server is the step's own `manage.py runserver`, in a process of its own, with the
step's settings except for the database, a new file for each test session, never the db.sqlite3 you develop with
(on PostgreSQL, a new database beside the test database), and the password hasher, a fast one.
Environment variables the settings read, such as REDIS_URL, reach it unchanged.

Set UPDATE_SCREENSHOTS=1 to have the `screenshot` fixture rewrite docs/img/<step>.png.
"""

import contextlib
import os
import socket
import sqlite3
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest
import pytest_asyncio
from django.db import connection
from playwright.async_api import Error as PlaywrightError
from playwright.async_api import async_playwright

STEP = Path(__file__).resolve().parents[1]
SCREENSHOTS = STEP.parents[1] / "docs" / "img"
# Chromium's headless shell, the build Playwright itself runs headless pages in, at about half the cost of the full
# browser: Debian's, else Debian's full Chromium, else the one Playwright downloads (None: Playwright's choice).
DEBIAN_CHROMIUMS = [Path("/usr/bin/chromium-headless-shell"), Path("/usr/bin/chromium")]
# Headless on a machine without a display, a GPU or a way out: nothing to set up, update or sync.
CHROMIUM_FLAGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
    "--disable-sync",
    "--disable-quic",
]
NO_BROWSER = (
    "no browser for the browser tests: install Chromium's headless shell: sudo apt-get install "
    "chromium-headless-shell, or python -m playwright install --only-shell chromium"
)
VIEWPORT = {"width": 800, "height": 600}
SERVER_START_SECONDS = 30
SETTINGS = """\
from mysite.settings import *  # noqa: F403

DATABASES = {{"default": {{**DATABASES["default"], "NAME": {database!r}}}}}  # noqa: F405
# Every login checks a password: the default hasher takes a third of a second for each on purpose.
PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
"""


class Site:
    """The step's settings with a database of their own, for manage.py commands and servers."""

    def __init__(self, folder, database=None):
        self.database = database or folder / "db.sqlite3"
        (folder / "browser_test_settings.py").write_text(SETTINGS.format(database=str(self.database)))
        self.folder = folder
        python_path = [str(folder), *filter(None, [os.environ.get("PYTHONPATH")])]
        self.env = {
            **os.environ,
            "DJANGO_SETTINGS_MODULE": "browser_test_settings",
            "PYTHONPATH": os.pathsep.join(python_path),
            "PYTHONUNBUFFERED": "1",
        }

    def manage(self, *args):
        """Run a manage.py command on this site, e.g. site.manage("migrate"); fail the test if it fails."""
        command = [sys.executable, "manage.py", *args]
        result = subprocess.run(command, cwd=STEP, env=self.env, capture_output=True, text=True)
        if result.returncode:
            pytest.fail(f"`manage.py {' '.join(args)}` failed:\n{result.stdout}{result.stderr}")
        return result

    def serve(self):
        return Server(self)


class Server:
    """`manage.py runserver` (daphne, with the static files) on a free port, until stop(); start() starts it again."""

    def __init__(self, site):
        self.site = site
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = site.folder / f"server-{self.port}.log"
        self.start()

    def start(self):
        # --insecure serves the static files even when the settings turn DEBUG off.
        command = [sys.executable, "manage.py", "runserver", "--noreload", "--insecure", f"127.0.0.1:{self.port}"]
        with self.log.open("a") as log:
            self.process = subprocess.Popen(command, cwd=STEP, env=self.site.env, stdout=log, stderr=subprocess.STDOUT)
        self.wait_until_listening()

    def wait_until_listening(self):
        deadline = time.monotonic() + SERVER_START_SECONDS
        while not accepts_connections(self.port):
            try:
                code = self.process.wait(timeout=0.05)
            except subprocess.TimeoutExpired:
                if time.monotonic() < deadline:
                    continue
                self.stop()
                problem = f"did not listen within {SERVER_START_SECONDS} s"
            else:
                problem = f"stopped with exit code {code} before listening"
            pytest.fail(f"the server for {self.url} {problem}:\n{self.output()}")

    def output(self):
        return self.log.read_text(errors="replace")

    def stop(self):
        self.process.terminate()
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


def free_port():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def accepts_connections(port):
    try:
        socket.create_connection(("127.0.0.1", port), timeout=1).close()
    except OSError:
        return False
    return True


@pytest.fixture(scope="session")
def site(tmp_path_factory, django_db_setup, django_db_blocker):
    """The site the servers in child processes share, with its database.

    That database starts as a copy of the test database, which pytest-django has migrated already: migrating another
    in a process of its own takes about a second. pytest-django makes no test database when no test of the session
    uses one (as in `pytest tests/test_browser.py`); then the site's is migrated. On PostgreSQL the site has a
    database of its own on the same server, named after the test database, migrated too and dropped at the end.
    """
    if connection.vendor == "postgresql":
        yield from postgresql_site(tmp_path_factory.mktemp("site"), django_db_blocker)
        return
    site = Site(tmp_path_factory.mktemp("site"))
    if not connection.creation.is_in_memory_db(connection.settings_dict["NAME"]):
        site.manage("migrate", "--noinput")
        yield site
        return
    with django_db_blocker.unblock(), contextlib.closing(sqlite3.connect(site.database)) as copy:
        connection.ensure_connection()
        connection.connection.backup(copy)
    yield site


def postgresql_site(folder, django_db_blocker):
    name = connection.ops.quote_name(f"{connection.settings_dict['NAME']}_site")
    with django_db_blocker.unblock(), connection._nodb_cursor() as cursor:
        cursor.execute(f"DROP DATABASE IF EXISTS {name}")  # left by a session that was killed
        cursor.execute(f"CREATE DATABASE {name}")
    site = Site(folder, database=name.strip('"'))
    site.manage("migrate", "--noinput")
    yield site
    with django_db_blocker.unblock(), connection._nodb_cursor() as cursor:
        cursor.execute(f"DROP DATABASE {name}")


@pytest.fixture(scope="session")
def server(site):
    """The server every browser test of the session shares."""
    server = site.serve()
    yield server
    server.stop()


@pytest.fixture
def own_server(site):
    """A server for one test alone, which it may stop."""
    server = site.serve()
    yield server
    server.stop()


@pytest.fixture
def room_name():
    """A room no other test uses (nor a server you run meanwhile), so their messages never show up in it."""
    return f"room-{uuid.uuid4().hex[:8]}"


@pytest_asyncio.fixture(scope="session", loop_scope="session")
async def browser():
    try:
        playwright = await async_playwright().start()
    except Exception as error:  # Playwright's driver is a Node.js program, which needs libatomic to start
        missing(f"Playwright's driver cannot start ({error}): on Debian or Ubuntu, sudo apt-get install libatomic1")
    try:
        executable = next((path for path in DEBIAN_CHROMIUMS if path.exists()), None)
        try:
            browser = await playwright.chromium.launch(executable_path=executable, headless=True, args=CHROMIUM_FLAGS)
        except PlaywrightError as error:
            if "Executable doesn't exist" not in error.message:
                raise
            missing(NO_BROWSER)
        yield browser
        await browser.close()
    finally:
        await playwright.stop()


def missing(message):
    """Skip the browser tests for want of something they need; under CI, where nothing may be skipped, fail them."""
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(message)
    pytest.skip(message)


@pytest_asyncio.fixture(loop_scope="session")
async def new_page(browser):
    """Opens pages, each in a context of its own (like another person's browser); fails on JavaScript errors.

    Options go to the new context, e.g. new_page(storage_state=...) for a browser that is already logged in.
    """
    contexts, errors = [], []

    async def open_page(**options):
        context = await browser.new_context(viewport=VIEWPORT, **options)
        contexts.append(context)
        page = await context.new_page()
        page.on("pageerror", lambda error: errors.append(error))
        return page

    yield open_page
    for context in contexts:
        await context.close()
    assert errors == [], f"the page raised JavaScript errors: {errors}"


@pytest_asyncio.fixture(loop_scope="session")
async def page(new_page):
    return await new_page()


async def assert_on_page(page, *selectors):
    """Fails at once, naming them, when elements the page's HTML should hold are not there at all.

    Waiting for such an element to show up, or to get focus, would only fail after the whole timeout.
    """
    missing = [selector for selector in selectors if not await page.locator(selector).count()]
    assert missing == [], f"{page.url} has no element {', '.join(missing)}"


@pytest.fixture
def screenshot():
    """Saves a page as docs/img/<step>.png when UPDATE_SCREENSHOTS=1, and does nothing otherwise."""

    async def save(page):
        if os.environ.get("UPDATE_SCREENSHOTS") != "1":
            return
        if not SCREENSHOTS.is_dir():
            pytest.fail(f"no folder {SCREENSHOTS} for the screenshots: is this step inside the workshop's steps/?")
        await page.screenshot(path=SCREENSHOTS / f"{STEP.name}.png", full_page=True, animations="disabled")

    return save
