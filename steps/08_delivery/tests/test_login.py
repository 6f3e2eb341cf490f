import logging

import pytest
from asgiref.sync import sync_to_async
from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.sessions.models import Session
from django.test import Client
from django.urls import reverse
from pages import Page, element

from browser import free_port
from chat.close_codes import LOGGED_OUT
from sockets import handshake, logged_in

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.mark.parametrize("path", ["/chat/", "/chat/lobby/"])
def test_pages_send_a_visitor_without_a_login_to_the_login_page(path):
    response = Client().get(path)

    assert response.status_code == 302
    assert response["Location"] == f"/accounts/login/?next={path}"


def test_login_page_is_our_own_template():
    html = Client().get(reverse("login")).content.decode()

    form = element(html, "login-form")
    assert (form.tag, form.attributes.get("method", "get").lower()) == ("form", "post")
    assert "csrfmiddlewaretoken" in [field.attributes.get("name") for field in form.children]
    stylesheets = [link.attributes.get("href") for link in Page(html).elements if link.tag == "link"]
    assert "/static/chat/style.css" in stylesheets


def test_logging_in_leads_to_the_room_picker(django_user_model):
    django_user_model.objects.create_user("alice", password="a long passphrase")
    client = Client()

    response = client.post(reverse("login"), {"username": "alice", "password": "a long passphrase"}, follow=True)

    assert response.redirect_chain == [(reverse("index"), 302)]
    assert element(response.content.decode(), "room-name-input").tag == "input"


def test_header_shows_the_user_and_a_logout_form_with_the_csrf_token(client):
    html = client.get(reverse("index")).content.decode()

    assert element(html, "username").text.strip() == "alice"
    logout = element(html, "logout-form")
    assert (logout.tag, logout.attributes.get("method", "get").lower()) == ("form", "post")
    assert logout.attributes["action"] == reverse("logout")
    tokens = [field for field in Page(html).elements if field.attributes.get("name") == "csrfmiddlewaretoken"]
    assert len(tokens) == 1 and tokens[0] in logout.children


def test_logout_by_post_ends_the_session_and_leads_to_the_login_page(client):
    response = client.post(reverse("logout"))

    assert response.status_code == 302
    assert response["Location"] == reverse("login")
    assert client.get(reverse("index")).status_code == 302


def test_logout_by_get_is_refused_and_keeps_the_session(client):
    response = client.get(reverse("logout"))

    assert response.status_code == 405
    assert client.get(reverse("index")).status_code == 200


def test_logout_without_the_csrf_token_is_refused(django_user_model):
    client = Client(enforce_csrf_checks=True)
    client.force_login(django_user_model.objects.create_user("alice"))

    response = client.post(reverse("logout"))

    assert response.status_code == 403
    assert settings.SESSION_COOKIE_NAME in client.cookies
    assert client.get(reverse("index")).status_code == 200


async def test_logging_out_closes_the_sockets_of_that_session_only(open_socket, room_name):
    client = await sync_to_async(logged_in)()
    logging_out = await open_socket(room_name, client=client)
    other_browser = await open_socket(room_name)

    await sync_to_async(client.post)(reverse("logout"))

    assert await logging_out.receive_output(timeout=2) == {"type": "websocket.close", "code": LOGGED_OUT}
    await other_browser.send_json_to({"message": "still logged in"})
    assert (await other_browser.receive_json_from())["message"] == "still logged in"


def give_a_new_password(client):
    user = get_user_model().objects.get(username="alice")
    user.set_password("a new passphrase")
    user.save()


def deactivate(client):
    user = get_user_model().objects.get(username="alice")
    user.is_active = False
    user.save()


def delete_the_session(client):
    """As clearsessions does once the session has expired."""
    Session.objects.filter(session_key=client.session.session_key).delete()


@pytest.mark.parametrize("change", [give_a_new_password, deactivate, delete_the_session])
async def test_a_socket_closes_once_its_session_no_longer_logs_its_user_in(open_socket, change):
    client = await sync_to_async(logged_in)()
    alices = await open_socket(client=client)
    bobs = await open_socket(client=await sync_to_async(logged_in)("bob"))

    await sync_to_async(change)(client)

    assert await alices.receive_output(timeout=2) == {"type": "websocket.close", "code": LOGGED_OUT}
    await bobs.send_json_to({"message": "still logged in"})
    assert (await bobs.receive_json_from())["message"] == "still logged in"


async def test_logging_in_elsewhere_leaves_the_users_sockets_open(open_socket):
    socket = await open_socket()

    await sync_to_async(logged_in)()

    await socket.send_json_to({"message": "still logged in"})
    assert (await socket.receive_json_from())["message"] == "still logged in"


async def test_a_socket_of_a_logged_out_session_is_refused(room_name):
    client = await sync_to_async(logged_in)()
    await sync_to_async(client.post)(reverse("logout"))

    socket, accepted = await handshake(f"/ws/chat/{room_name}/", client=client)

    assert not accepted


def test_logging_out_works_without_redis_and_says_the_sockets_stay_open(client, settings, caplog):
    layer = settings.CHANNEL_LAYERS["default"]
    unreachable = {"address": f"redis://127.0.0.1:{free_port()}/0"}
    settings.CHANNEL_LAYERS = {"default": {**layer, "CONFIG": {**layer["CONFIG"], "hosts": [unreachable]}}}

    with caplog.at_level(logging.WARNING):
        response = client.post(reverse("logout"))

    assert (response.status_code, response["Location"]) == (302, reverse("login"))
    assert client.get(reverse("index")).status_code == 302
    [record] = caplog.records
    assert "without closing its sockets" in record.getMessage()
