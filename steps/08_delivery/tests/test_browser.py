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
# uvicorn closes every socket with this standard code as it stops.
SERVICE_RESTART = 1012
# How long a page waits for a message missing from the numbers before it asks for it: GAP_WAIT in room.js.
GAP_WAIT_MILLISECONDS = 1_000
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


def message(number, **fields):
    return {"id": number, "number": number, "author": "bob", "message": f"message {number}", "created": "", **fields}


def frame(number):
    return json.dumps({"messages": [message(number)]})


async def test_a_page_reconnects_after_the_last_message_it_has_all_those_before(server, page, room_name):
    """Two processes can deliver a room's messages out of order: here 3 arrives, 2 is still on its way."""
    connections = []

    async def server_that_drops_the_line(socket):
        connections.append(socket.url)
        if len(connections) == 1:
            for number in (1, 3):
                socket.send(frame(number))
            await socket.close(code=1011)
        else:
            for number in (2, 3, 4):
                socket.send(frame(number))

    await pause_clock(page)
    await page.route_web_socket(re.compile(r"/ws/chat/"), server_that_drops_the_line)
    await page.goto(f"{server.url}/chat/{room_name}/")
    await expect(page.locator("#connection-status")).to_have_attribute("data-state", "closed")
    await page.clock.fast_forward(RECONNECT_DELAY_MILLISECONDS)

    shown = [f"bob: message {number}" for number in (1, 3, 2, 4)]
    await expect(page.locator("#chat-log li")).to_have_text(shown)
    assert [url.partition("?")[2] for url in connections] == ["after=0", "after=1"]


async def test_a_page_stops_waiting_for_messages_older_than_the_history_it_gets(server, page, room_name):
    connections = []
    reconnected = asyncio.Event()

    async def server_with_a_long_history(socket):
        connections.append(socket.url)
        if len(connections) > 1:
            reconnected.set()
            return
        socket.send(json.dumps({"history_after": 40}))
        for number in (41, 43):
            socket.send(frame(number))
        await socket.close(code=1011)

    await pause_clock(page)
    await page.route_web_socket(re.compile(r"/ws/chat/"), server_with_a_long_history)
    await page.goto(f"{server.url}/chat/{room_name}/")

    shown = ["40 earlier messages are not shown.", "bob: message 41", "bob: message 43"]
    await expect(page.locator("#chat-log li")).to_have_text(shown)
    await expect(page.locator("#connection-status")).to_have_attribute("data-state", "closed")
    await page.clock.fast_forward(RECONNECT_DELAY_MILLISECONDS)
    await asyncio.wait_for(reconnected.wait(), 5)
    assert connections[1].partition("?")[2] == "after=41"


async def serve_the_page_with(page, handler):
    """Answers the page's sockets with `handler` instead of the server, to misbehave on purpose; pauses its clock."""
    await pause_clock(page)
    await page.route_web_socket(re.compile(r"/ws/chat/"), handler)


async def test_a_page_sends_again_what_the_server_never_acknowledged(server, page, room_name):
    connections, sent, arrived = [], [], asyncio.Queue()

    async def server_that_never_answers(socket):
        connections.append(socket)

        def note(text):
            sent.append((len(connections), json.loads(text)))
            arrived.put_nowait(None)

        socket.on_message(note)

    await serve_the_page_with(page, server_that_never_answers)
    await page.goto(f"{server.url}/chat/{room_name}/")
    await expect(page.locator("#connection-status")).to_have_attribute("data-state", "open")
    await send(page, "are you there?")
    await asyncio.wait_for(arrived.get(), 5)
    await connections[0].close(code=1011)
    await page.clock.fast_forward(RECONNECT_DELAY_MILLISECONDS)

    await asyncio.wait_for(arrived.get(), 5)
    (first, sent_first), (second, sent_again) = sent
    assert (first, second) == (1, 2)
    assert sent_first == sent_again
    assert sent_first["message"] == "are you there?" and sent_first["client_id"]


async def test_a_page_does_not_send_again_what_the_server_saved(server, page, room_name):
    sent = []
    connections = []

    async def server_that_saves_then_drops_the_line(socket):
        connections.append(socket)

        def saved(text):
            received = json.loads(text)
            sent.append(received)
            fields = {"author": "alice", "message": received["message"], "client_id": received["client_id"]}
            socket.send(json.dumps({"messages": [message(len(sent), **fields)]}))

        socket.on_message(saved)

    await serve_the_page_with(page, server_that_saves_then_drops_the_line)
    await page.goto(f"{server.url}/chat/{room_name}/")
    await expect(page.locator("#connection-status")).to_have_attribute("data-state", "open")
    await send(page, "saved once")
    await expect(page.locator("#chat-log li")).to_have_text(["alice: saved once"])
    await connections[0].close(code=1011)
    await page.clock.fast_forward(RECONNECT_DELAY_MILLISECONDS)

    await expect(page.locator("#connection-status")).to_have_attribute("data-state", "open")
    await page.locator("#chat-message-input").focus()
    await send(page, "next")
    await expect(page.locator("#chat-log li")).to_have_text(["alice: saved once", "alice: next"])
    assert [received["message"] for received in sent] == ["saved once", "next"]


async def test_a_message_the_server_refuses_goes_back_in_the_input(server, page, room_name):
    async def busy_server(socket):
        def refuse(text):
            socket.send(json.dumps({"error": "The server is busy.", "refused": json.loads(text)["client_id"]}))

        socket.on_message(refuse)

    await serve_the_page_with(page, busy_server)
    await page.goto(f"{server.url}/chat/{room_name}/")
    await expect(page.locator("#connection-status")).to_have_attribute("data-state", "open")

    await send(page, "please save me")

    await expect(page.locator("#chat-log li.error")).to_have_text(["The server is busy."])
    await expect(page.locator("#chat-message-input")).to_have_value("please save me")


async def test_a_page_told_the_server_is_busy_sends_nothing_until_it_may(server, page, room_name):
    sent = []

    async def server_busy_once(socket):
        def answer(text):
            received = json.loads(text)
            sent.append(received["message"])
            if len(sent) == 1:
                refusal = {"error": "The server is busy.", "refused": received["client_id"]}
                socket.send(json.dumps({**refusal, "retry_after": RETRY_AFTER_MILLISECONDS / 1000}))
            else:
                fields = {"author": "alice", "message": received["message"], "client_id": received["client_id"]}
                socket.send(json.dumps({"messages": [message(len(sent), **fields)]}))

        socket.on_message(answer)

    await serve_the_page_with(page, server_busy_once)
    await page.goto(f"{server.url}/chat/{room_name}/")
    await expect(page.locator("#connection-status")).to_have_attribute("data-state", "open")
    await send(page, "first")
    await expect(page.locator("#chat-message-submit")).to_be_disabled()

    await page.locator("#chat-message-input").fill("second")
    await page.keyboard.press("Enter")
    await expect(page.locator("#chat-message-input")).to_have_value("second")
    await page.clock.fast_forward(RETRY_AFTER_MILLISECONDS)
    await expect(page.locator("#chat-message-submit")).to_be_enabled()
    await page.keyboard.press("Enter")

    await expect(page.locator("#chat-log li.message")).to_have_text(["alice: second"])
    assert sent == ["first", "second"]


async def test_a_page_asks_for_a_message_still_missing_after_a_second(server, page, room_name):
    asked = []

    async def server_that_loses_message_2(socket):
        def answer(text):
            asked.append(json.loads(text))
            socket.send(frame(2))

        socket.on_message(answer)
        for number in (1, 3):
            socket.send(frame(number))

    await serve_the_page_with(page, server_that_loses_message_2)
    await page.goto(f"{server.url}/chat/{room_name}/")
    await expect(page.locator("#chat-log li")).to_have_text(["bob: message 1", "bob: message 3"])
    assert asked == []

    await page.clock.fast_forward(GAP_WAIT_MILLISECONDS)

    await expect(page.locator("#chat-log li")).to_have_text(["bob: message 1", "bob: message 3", "bob: message 2"])
    assert asked == [{"fetch_after": 1}]


async def test_a_page_reconnects_at_once_when_its_server_restarts(server, page, room_name):
    connections = []

    async def server_that_restarts(socket):
        connections.append(socket)
        if len(connections) == 1:
            await socket.close(code=SERVICE_RESTART)

    await serve_the_page_with(page, server_that_restarts)
    await page.goto(f"{server.url}/chat/{room_name}/")
    await expect(page.locator("#connection-status")).to_have_text("Disconnected: reconnecting in 0 s.")

    await page.clock.run_for(1)

    await expect(page.locator("#connection-status")).to_have_attribute("data-state", "open")
    assert len(connections) == 2


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
