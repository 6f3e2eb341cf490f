import pytest
from django.conf import settings
from django.test import Client
from django.urls import reverse

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.mark.parametrize("path", ["/chat/", "/chat/lobby/"])
def test_pages_send_a_visitor_without_a_login_to_the_login_page(path):
    response = Client().get(path)

    assert response.status_code == 302
    assert response["Location"] == f"/accounts/login/?next={path}"


def test_login_page_is_our_own_template():
    html = Client().get(reverse("login")).content.decode()

    assert '<form id="login-form" method="post"' in html
    assert 'name="csrfmiddlewaretoken"' in html
    assert 'href="/static/chat/style.css"' in html


def test_logging_in_leads_to_the_room_picker(django_user_model):
    django_user_model.objects.create_user("alice", password="a long passphrase")
    client = Client()

    response = client.post(reverse("login"), {"username": "alice", "password": "a long passphrase"}, follow=True)

    assert response.redirect_chain == [(reverse("index"), 302)]
    assert 'id="room-name-input"' in response.content.decode()


def test_header_shows_the_user_and_a_logout_form_with_the_csrf_token(client):
    html = client.get(reverse("index")).content.decode()

    assert '<span id="username">alice</span>' in html
    assert '<form id="logout-form" method="post" action="/accounts/logout/">' in html
    assert html.count('name="csrfmiddlewaretoken"') == 1


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
