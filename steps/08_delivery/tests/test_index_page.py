import re

from django.urls import reverse
from pages import Page, element


def test_index_page_offers_a_focused_room_name_form(client):
    response = client.get(reverse("index"))

    assert response.status_code == 200
    html = response.content.decode()
    form = element(html, "room-form")
    room_name = element(html, "room-name-input")
    assert (form.tag, form.attributes.get("method", "get").lower()) == ("form", "get")
    assert room_name in form.children and element(html, "room-name-submit") in form.children
    assert {"autofocus", "required"} <= room_name.attributes.keys()
    assert room_name.attributes["name"] == "room_name"


def test_index_page_hands_the_room_name_rule_to_the_browser(client):
    pattern = element(client.get(reverse("index")).content.decode(), "room-name-input").attributes["pattern"]

    assert re.fullmatch(pattern, "lobby")
    assert not re.fullmatch(pattern, "two words")


def test_a_first_visit_shows_no_error(client):
    assert "room-name-error" not in Page(client.get(reverse("index")).content.decode()).by_id


def test_the_form_opens_the_room_it_names_without_javascript(client):
    response = client.get(reverse("index"), {"room_name": " lobby "})

    assert (response.status_code, response["Location"]) == (302, "/chat/lobby/")


def test_a_forbidden_room_name_from_the_form_shows_the_rule_and_keeps_what_was_typed(client):
    response = client.get(reverse("index"), {"room_name": "<b>two words</b>"})

    assert response.status_code == 200
    html = response.content.decode()
    assert "letters, digits" in element(html, "room-name-error").text
    assert element(html, "room-name-input").attributes["value"] == "<b>two words</b>"
    assert "<b>" not in html
