import json
import re

from django.urls import reverse


def test_index_page_offers_a_focused_room_name_form(client):
    response = client.get(reverse("index"))

    assert response.status_code == 200
    html = response.content.decode()
    assert re.search(r'<input id="room-name-input"[^>]*\bautofocus\b', html)
    assert 'id="room-name-submit" type="submit"' in html
    assert 'id="room-name-error"' in html


def test_index_page_hands_the_room_name_rule_to_the_browser(client):
    html = client.get(reverse("index")).content.decode()

    script = re.search(r'<script id="room-name-pattern" type="application/json">(.*?)</script>', html)
    pattern = json.loads(script.group(1))
    assert re.fullmatch(pattern, "lobby")
    assert not re.fullmatch(pattern, "two words")
