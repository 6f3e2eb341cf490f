import asyncio
import datetime
import json
import re

import pytest
import pytest_asyncio
from playwright.async_api import expect

from browser import assert_on_page
from chat.management.commands.create_demo_users import DEMO_USERS

# The browser is shared by the whole session, so the tests run in the session's event loop.
pytestmark = pytest.mark.asyncio(loop_scope="session")
# How long a page waits before it first tries to reconnect: FIRST_RETRY_DELAY in room.js.
RECONNECT_DELAY_MILLISECONDS = 500
# How long a page told the server is busy waits before it sends again: RETRY_AFTER_SECONDS in chat/consumers.py.
RETRY_AFTER_MILLISECONDS = 500
SAVE_120_MESSAGES = """
from django.contrib.auth import get_user_model
from chat.models import Message, Room

room = Room.objects.get(name={room_name!r})
bob = get_user_model().objects.get_or_create(username="bob")[0]
Message.objects.bulk_create(
    Message(room=room, number=room.last_number + n, author=bob, body=f"missed {{n}}") for n in range(1, 121)
)
Room.objects.filter(pk=room.pk).update(last_number=room.last_number + 120)
"""


@pytest.fixture(scope="session")
def demo_users(site):
    site.manage("create_demo_users")


async def log_in(page, server, username):
    await page.goto(f"{server.url}/accounts/login/")
    await page.locator("#id_username").fill(username)
    await page.locator("#id_password").fill(DEMO_USERS[username])
    await page.locator("#login-submit").click()
    await expect(page.locator("#username")).to_have_text(username)


@pytest_asyncio.fixture(scope="session", loop_scope="session")
async def logged_in_as(browser, server, demo_users):
    """The cookies of a browser that logged in once as each demo user, to start other browsers from."""

    async def storage_state(username):
        context = await browser.new_context()
        await log_in(await context.new_page(), server, username)
        state = await context.storage_state()
        await context.close()
        return state

    return dict(zip(DEMO_USERS, await asyncio.gather(*map(storage_state, DEMO_USERS)), strict=True))


@pytest_asyncio.fixture(loop_scope="session")
async def page(new_page, logged_in_as):
    """A page logged in as alice."""
    return await new_page(storage_state=logged_in_as["alice"])


async def pause_clock(page):
    """Stops the page's timers until the test moves its clock on: a reconnect then waits for the test, not a delay.

    Call it before the page loads. The clock stops a minute ahead: pausing it at the present fails now and then on a
    busy machine, where the page's clock has passed that moment by the time the pause reaches it.
    """
    await page.clock.install()
    await page.clock.pause_at(datetime.datetime.now() + datetime.timedelta(minutes=1))


async def open_index(page, server):
    await page.goto(f"{server.url}/chat/")
    await assert_on_page(page, "#room-name-input")
    # Keys typed before the autofocus lands would go nowhere.
    await expect(page.locator("#room-name-input")).to_be_focused()


async def open_room(page, server, room_name):
    await page.goto(f"{server.url}/chat/{room_name}/")
    await assert_on_page(page, "#connection-status", "#chat-log", "#chat-message-input")
    await expect(page.locator("#connection-status")).to_have_attribute("data-state", "open")
    await expect(page.locator("#chat-message-input")).to_be_focused()


async def send(page, text):
    await page.keyboard.type(text)
    await page.keyboard.press("Enter")


async def test_index_puts_the_cursor_in_the_room_name_input(server, page):
    await page.goto(f"{server.url}/chat/")

    await assert_on_page(page, "#room-name-input")
    await expect(page.locator("#room-name-input")).to_be_focused()


async def test_typing_a_room_name_and_enter_opens_the_room(server, page):
    await open_index(page, server)

    await page.keyboard.type("lobby")
    await page.keyboard.press("Enter")

    await expect(page).to_have_url(f"{server.url}/chat/lobby/")
    await expect(page.locator("#room-name-heading")).to_have_text("lobby")


@pytest.mark.parametrize("room_name", ["two words", "café"])
async def test_the_browser_refuses_a_forbidden_room_name_before_sending_it(server, page, room_name):
    await open_index(page, server)

    await page.keyboard.type(room_name)
    await page.keyboard.press("Enter")

    await expect(page.locator("#room-name-input:invalid")).to_be_visible()
    await expect(page).to_have_url(f"{server.url}/chat/")


async def test_the_room_form_works_with_javascript_turned_off(server, browser, demo_users):
    context = await browser.new_context(java_script_enabled=False)
    page = await context.new_page()
    try:
        await log_in(page, server, "alice")
        await open_index(page, server)
        await page.keyboard.type("lobby")
        await page.keyboard.press("Enter")

        await expect(page.locator("#room-name-heading")).to_have_text("lobby")
    finally:
        await context.close()


async def test_a_visitor_logs_in_first_and_then_gets_the_room_asked_for(server, new_page, demo_users, room_name):
    visitor = await new_page()

    await visitor.goto(f"{server.url}/chat/{room_name}/")
    await expect(visitor).to_have_url(f"{server.url}/accounts/login/?next=/chat/{room_name}/")
    await visitor.locator("#id_username").fill("bob")
    await visitor.locator("#id_password").fill(DEMO_USERS["bob"])
    await visitor.keyboard.press("Enter")

    await expect(visitor).to_have_url(f"{server.url}/chat/{room_name}/")
    await expect(visitor.locator("#connection-status")).to_have_attribute("data-state", "open")


async def test_message_sent_with_enter_appears_in_the_senders_log(server, page, room_name):
    await open_room(page, server, room_name)

    await send(page, "hello")

    await expect(page.locator("#chat-log li")).to_have_text(["alice: hello"])


async def test_input_is_emptied_once_the_message_is_sent(server, page, room_name):
    await open_room(page, server, room_name)

    await send(page, "hello")

    await expect(page.locator("#chat-message-input")).to_have_value("")
    await expect(page.locator("#chat-message-input")).to_be_focused()


async def test_messages_appear_in_the_order_they_were_sent(server, page, room_name):
    await open_room(page, server, room_name)

    await send(page, "first")
    await send(page, "second")

    await expect(page.locator("#chat-log li")).to_have_text(["alice: first", "alice: second"])


async def test_markup_in_a_message_shows_as_text(server, page, room_name):
    await open_room(page, server, room_name)

    await send(page, "<b>bold</b>")

    await expect(page.locator("#chat-log li")).to_have_text(["alice: <b>bold</b>"])
    # The only element in the line is the one that holds the author's name.
    await expect(page.locator("#chat-log b")).to_have_text(["alice"])


async def test_a_line_break_in_a_message_cannot_pass_for_a_line_by_another_author(server, page, room_name):
    await open_room(page, server, room_name)

    # The input field holds one line, but anything that speaks WebSocket can send a line break.
    await page.evaluate("socket.send(JSON.stringify({ message: 'ok\\nbob: I quit' }))")

    await expect(page.locator("#chat-log li")).to_have_text(["alice: ok\nbob: I quit"])
    await expect(page.locator("#chat-log .author")).to_have_text(["alice"])


async def test_a_script_in_a_message_runs_nothing_for_the_reader(server, page, new_page, room_name, logged_in_as):
    payload = '<img src=x onerror="alert(1)"><script>alert(2)</script>'
    reader = await new_page(storage_state=logged_in_as["bob"])
    dialogs = []
    reader.on("dialog", lambda dialog: dialogs.append(dialog.message))
    await open_room(reader, server, room_name)
    await open_room(page, server, room_name)

    await send(page, payload)
    await expect(reader.locator("#chat-log li")).to_have_text([f"alice: {payload}"])
    await reader.reload()

    await expect(reader.locator("#chat-log li")).to_have_text([f"alice: {payload}"])
    await expect(reader.locator("#chat-log img, #chat-log script")).to_have_count(0)
    assert dialogs == []


async def test_entering_a_room_shows_what_was_said_before(server, page, new_page, room_name, logged_in_as):
    await open_room(page, server, room_name)
    await send(page, "anyone?")
    await send(page, "hello?")
    await expect(page.locator("#chat-log li")).to_have_count(2)
    latecomer = await new_page(storage_state=logged_in_as["bob"])

    await open_room(latecomer, server, room_name)

    await expect(latecomer.locator("#chat-log li")).to_have_text(["alice: anyone?", "alice: hello?"])


async def test_the_logout_button_logs_out_and_closes_the_other_tabs_sockets(server, new_page, demo_users, room_name):
    # A login of its own: logging out ends the session, which the other tests' pages share.
    page = await new_page()
    await log_in(page, server, "alice")
    other_tab = await page.context.new_page()
    await open_room(other_tab, server, room_name)
    await open_room(page, server, room_name)

    await page.locator("#logout-submit").click()

    await expect(page).to_have_url(f"{server.url}/accounts/login/")
    await expect(other_tab.locator("#connection-status")).to_have_text("Logged out: log in again to chat.")
    await expect(other_tab.locator("#chat-message-input")).to_be_disabled()


async def test_a_page_back_after_120_messages_says_how_many_it_does_not_show(own_server, page, room_name, site):
    await pause_clock(page)
    await open_room(page, own_server, room_name)
    await send(page, "before the break")
    await expect(page.locator("#chat-log li")).to_have_text(["alice: before the break"])

    own_server.stop()
    site.manage("shell", "-c", SAVE_120_MESSAGES.format(room_name=room_name))
    own_server.start()
    await page.clock.fast_forward(RECONNECT_DELAY_MILLISECONDS)

    log = page.locator("#chat-log li")
    await expect(log).to_have_count(2 + 50)
    await expect(log.nth(1)).to_have_text("70 earlier messages are not shown.")
    await expect(log.last).to_have_text("bob: missed 120")


async def test_a_page_told_the_server_is_busy_sends_nothing_until_it_may(server, page, room_name):
    sent = []

    async def busy_server(socket):
        def refuse(text):
            sent.append(json.loads(text)["message"])
            socket.send(json.dumps({"error": "The server is busy.", "retry_after": RETRY_AFTER_MILLISECONDS / 1000}))

        socket.on_message(refuse)

    await pause_clock(page)
    await page.route_web_socket(re.compile(r"/ws/chat/"), busy_server)
    await open_room(page, server, room_name)
    await send(page, "first")
    await expect(page.locator("#chat-message-submit")).to_be_disabled()

    await send(page, "second")
    await expect(page.locator("#chat-message-input")).to_have_value("second")
    await page.clock.fast_forward(RETRY_AFTER_MILLISECONDS)
    await expect(page.locator("#chat-message-submit")).to_be_enabled()
    await page.keyboard.press("Enter")

    await expect(page.locator("#chat-log li.error")).to_have_count(2)
    assert sent == ["first", "second"]


async def test_page_shows_when_the_connection_is_lost(own_server, page, room_name):
    await open_room(page, own_server, room_name)

    own_server.stop()

    await expect(page.locator("#connection-status")).to_have_attribute("data-state", "closed")
    await expect(page.locator("#chat-message-input")).to_be_disabled()


async def test_a_page_waits_longer_after_each_failed_reconnect_up_to_8_seconds(own_server, page, room_name):
    await pause_clock(page)
    await open_room(page, own_server, room_name)

    own_server.stop()

    status = page.locator("#connection-status")
    for seconds in (0.5, 1, 2, 4, 8, 8):
        await expect(status).to_have_text(f"Disconnected: reconnecting in {seconds:g} s.")
        await page.clock.fast_forward(int(seconds * 1000))


async def test_page_reconnects_after_a_restart_and_misses_nothing(own_server, page, new_page, room_name, logged_in_as):
    bob = await new_page(storage_state=logged_in_as["bob"])
    for each in (page, bob):
        await pause_clock(each)
        await open_room(each, own_server, room_name)
    await send(page, "before the restart")
    await expect(page.locator("#chat-log li")).to_have_text(["alice: before the restart"])

    own_server.stop()
    for each in (page, bob):
        await expect(each.locator("#connection-status")).to_have_attribute("data-state", "closed")
    own_server.start()
    for each in (page, bob):
        await each.clock.fast_forward(RECONNECT_DELAY_MILLISECONDS)
        await expect(each.locator("#connection-status")).to_have_attribute("data-state", "open")
    await bob.locator("#chat-message-input").focus()
    await send(bob, "after the restart")

    conversation = ["alice: before the restart", "bob: after the restart"]
    await expect(page.locator("#chat-log li")).to_have_text(conversation)
    await expect(page.locator("#connection-status")).to_have_attribute("data-state", "open")
    await expect(bob.locator("#chat-log li")).to_have_text(conversation)


async def test_two_users_in_a_room_both_see_what_either_sends(server, new_page, screenshot, logged_in_as):
    alice = await new_page(storage_state=logged_in_as["alice"])
    bob = await new_page(storage_state=logged_in_as["bob"])
    await open_room(alice, server, "lobby")
    await open_room(bob, server, "lobby")

    await send(alice, "Hello, is anyone here?")
    await expect(bob.locator("#chat-log li")).to_have_text(["alice: Hello, is anyone here?"])
    await send(bob, "Yes, I see you!")

    conversation = ["alice: Hello, is anyone here?", "bob: Yes, I see you!"]
    await expect(alice.locator("#chat-log li")).to_have_text(conversation)
    await expect(bob.locator("#chat-log li")).to_have_text(conversation)
    await screenshot(alice)


async def test_a_page_in_another_room_sees_nothing(server, page, new_page, room_name, logged_in_as):
    elsewhere = await new_page(storage_state=logged_in_as["bob"])
    await open_room(page, server, room_name)
    await open_room(elsewhere, server, f"{room_name}-next-door")

    await send(page, "only in this room")
    await expect(page.locator("#chat-log li")).to_have_text(["alice: only in this room"])
    # A message leaked earlier would reach the other room before its own message comes back.
    await send(elsewhere, "next door")

    await expect(elsewhere.locator("#chat-log li")).to_have_text(["bob: next door"])
