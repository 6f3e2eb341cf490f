import json

import pytest
from django.template.loader import render_to_string
from pages import Page, element

ALLOWED_NAMES = ["lobby", "Room-2.b_c", "9", "a" * 90]
FORBIDDEN_NAMES = [
    "café",
    "комната",
    "two words",
    "</script>",
    '"quoted"',
    "it's",
    "a" * 91,
    "..",
    ".hidden",
    "-dash-first",
]


@pytest.mark.parametrize("room_name", ALLOWED_NAMES)
def test_room_page_shows_the_room_name(client, room_name):
    response = client.get(f"/chat/{room_name}/")

    assert response.status_code == 200
    assert element(response.content.decode(), "room-name-heading").text == room_name


@pytest.mark.parametrize("room_name", ALLOWED_NAMES)
def test_room_page_hands_the_room_name_to_its_script(client, room_name):
    html = client.get(f"/chat/{room_name}/").content.decode()

    assert json.loads(element(html, "room-name").text) == room_name


@pytest.mark.parametrize("room_name", FORBIDDEN_NAMES)
def test_room_names_outside_the_rule_are_not_found(client, room_name):
    response = client.get(f"/chat/{room_name}/")

    assert response.status_code == 404


def test_room_template_escapes_the_name_it_shows():
    html = render_to_string("chat/room.html", {"room_name": "</script><b>bold</b>"})

    assert "<b>" not in html
    assert element(html, "room-name-heading").text == "</script><b>bold</b>"
    assert json.loads(element(html, "room-name").text) == "</script><b>bold</b>"


def test_room_page_links_back_to_the_index(client):
    html = client.get("/chat/lobby/").content.decode()

    assert "/chat/" in [link.attributes.get("href") for link in Page(html).elements if link.tag == "a"]


def test_room_page_has_the_chat_log_and_message_form(client):
    html = client.get("/chat/lobby/").content.decode()

    message = element(html, "chat-message-input")
    assert element(html, "chat-log").tag == "ol"
    assert message in element(html, "chat-form").children and element(html, "chat-message-submit").tag == "button"
    assert message.attributes["maxlength"] == "1000" and "autofocus" in message.attributes
    assert element(html, "connection-status").attributes["data-state"] == "connecting"
