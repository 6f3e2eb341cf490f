from channels.testing import HttpCommunicator
from django.core.management import call_command, get_commands
from pages import element

from mysite.asgi import application


def test_manage_py_check_is_clean():
    call_command("check", fail_level="WARNING")


def test_runserver_is_daphnes_asgi_server():
    assert get_commands()["runserver"] == "daphne"


async def test_asgi_application_serves_the_pages():
    communicator = HttpCommunicator(application, "GET", "/accounts/login/", headers=[(b"host", b"testserver")])

    response = await communicator.get_response()

    assert response["status"] == 200
    assert element(response["body"].decode(), "login-form").tag == "form"
