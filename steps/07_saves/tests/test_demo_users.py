import pytest
from django.contrib.auth import authenticate
from django.core.management import call_command
from django.test import Client
from django.urls import reverse

from chat.management.commands.create_demo_users import DEMO_USERS

pytestmark = pytest.mark.django_db


def test_demo_users_can_log_in_with_their_documented_passwords():
    call_command("create_demo_users")

    for username, password in DEMO_USERS.items():
        assert authenticate(username=username, password=password).username == username


def test_running_the_command_again_changes_nothing(django_user_model):
    call_command("create_demo_users")
    call_command("create_demo_users")

    assert sorted(django_user_model.objects.values_list("username", flat=True)) == ["alice", "bob"]
    assert all(authenticate(username=name, password=password) for name, password in DEMO_USERS.items())


def test_running_the_command_again_logs_nobody_out():
    """workshop.py run runs it on every start: a restart must not end the sessions of those logged in."""
    call_command("create_demo_users")
    browser = Client()
    assert browser.login(username="alice", password=DEMO_USERS["alice"])

    call_command("create_demo_users")

    assert browser.get(reverse("index")).status_code == 200
