"""Starting a step again with workshop.py run, as the chapters' demos do, keeps everyone logged in."""

import contextlib
import http.cookiejar
import re
import sys
import urllib.parse
import urllib.request
from pathlib import Path

from helpers import with_own_database
from tooling.config import ROOT
from tooling.processes import child_process, free_port, wait_until


def browser() -> urllib.request.OpenerDirector:
    """Something that keeps cookies between requests, as a browser does."""
    return urllib.request.build_opener(urllib.request.HTTPCookieProcessor(http.cookiejar.CookieJar()))


def page(opener: urllib.request.OpenerDirector, url: str, form: dict[str, str] | None = None) -> tuple[str, str]:
    """The address a request ends at, after redirects, and the page there."""
    data = urllib.parse.urlencode(form).encode() if form else None
    with opener.open(url, data=data, timeout=10) as response:
        return response.url, response.read().decode()


def answers(url: str) -> bool:
    try:
        page(browser(), url)
        return True
    except OSError:
        return False


def log_in(opener: urllib.request.OpenerDirector, base: str, username: str, password: str) -> None:
    _, html = page(opener, f"{base}/accounts/login/")
    token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', html)[1]
    credentials = {"csrfmiddlewaretoken": token, "username": username, "password": password}
    landed, _ = page(opener, f"{base}/accounts/login/", credentials)
    assert landed == f"{base}/chat/", f"logging in as {username} ended at {landed}"


@contextlib.contextmanager
def serving(port: int, env: dict[str, str], log: Path):
    """`workshop.py run` (the last step) started as an attendee starts it, once it serves; stopped at the end."""
    command = [sys.executable, "workshop.py", "run", "--port", str(port)]
    with log.open("a") as output, child_process(command, cwd=ROOT, env=env, stdout=output, stderr=output) as run:
        url = f"http://127.0.0.1:{port}/chat/"
        wait_until(lambda: answers(url) or run.poll() is not None, "run did not serve", 60)
        assert run.poll() is None, log.read_text()
        yield


# Django's default hasher takes a third of a second for each password on purpose, and every start checks two. A new
# hash of the same password ends the user's sessions whatever the hasher, so a fast one tests the same.
FAST_PASSWORD_HASHING = 'PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]\n'


def test_a_login_outlives_a_restart_of_the_server(tmp_path):
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    env, log = with_own_database(tmp_path, settings_after=FAST_PASSWORD_HASHING), tmp_path / "run.log"
    alice = browser()
    with serving(port, env, log):
        log_in(alice, base, "alice", "alice-chats")

    with serving(port, env, log):
        assert page(alice, f"{base}/chat/")[0] == f"{base}/chat/", "the restart sent alice back to the login page"
