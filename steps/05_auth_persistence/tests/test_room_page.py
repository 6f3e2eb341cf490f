import pytest
from django.template.loader import render_to_string

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
def test_room_page_hands_the_room_name_to_the_page(client, room_name):
    response = client.get(f"/chat/{room_name}/")

    assert response.status_code == 200
    assert f'<script id="room-name" type="application/json">"{room_name}"</script>' in response.content.decode()


@pytest.mark.parametrize("room_name", FORBIDDEN_NAMES)
def test_room_names_outside_the_rule_are_not_found(client, room_name):
    response = client.get(f"/chat/{room_name}/")

    assert response.status_code == 404


def test_room_template_escapes_the_name_it_shows():
    html = render_to_string("chat/room.html", {"room_name": "</script><b>bold</b>"})

    assert "<b>" not in html
    assert "&lt;/script&gt;&lt;b&gt;bold&lt;/b&gt;" in html
    assert '<script id="room-name" type="application/json">"\\u003C/script\\u003E' in html


def test_room_page_links_back_to_the_index(client):
    response = client.get("/chat/lobby/")

    assert 'href="/chat/"' in response.content.decode()


def test_room_page_has_the_chat_log_and_message_form(client):
    html = client.get("/chat/lobby/").content.decode()

    assert '<ol id="chat-log"' in html
    assert 'id="chat-message-input" type="text" maxlength="1000"' in html
    assert 'id="chat-message-submit" type="submit"' in html
    assert 'id="connection-status" data-state="connecting"' in html
