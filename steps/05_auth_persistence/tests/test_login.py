import pytest
from django.conf import settings
from django.test import Client
from django.urls import reverse
from pages import Page, element

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
