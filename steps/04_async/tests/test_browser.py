import pytest
from playwright.async_api import expect

from browser import assert_on_page

# The browser is shared by the whole session, so the tests run in the session's event loop.
pytestmark = pytest.mark.asyncio(loop_scope="session")


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


async def test_the_room_form_works_with_javascript_turned_off(server, browser):
    context = await browser.new_context(java_script_enabled=False)
    page = await context.new_page()
    try:
        await open_index(page, server)
        await page.keyboard.type("lobby")
        await page.keyboard.press("Enter")

        await expect(page.locator("#room-name-heading")).to_have_text("lobby")
    finally:
        await context.close()


async def test_message_sent_with_enter_appears_in_the_senders_log(server, page, room_name):
    await open_room(page, server, room_name)

    await send(page, "hello")

    await expect(page.locator("#chat-log li")).to_have_text(["hello"])


async def test_input_is_emptied_once_the_message_is_sent(server, page, room_name):
    await open_room(page, server, room_name)

    await send(page, "hello")

    await expect(page.locator("#chat-message-input")).to_have_value("")
    await expect(page.locator("#chat-message-input")).to_be_focused()


async def test_messages_appear_in_the_order_they_were_sent(server, page, room_name):
    await open_room(page, server, room_name)

    await send(page, "first")
    await send(page, "second")

    await expect(page.locator("#chat-log li")).to_have_text(["first", "second"])


async def test_markup_in_a_message_shows_as_text(server, page, room_name):
    await open_room(page, server, room_name)

    await send(page, "<b>bold</b>")

    await expect(page.locator("#chat-log li")).to_have_text(["<b>bold</b>"])
    await expect(page.locator("#chat-log b")).to_have_count(0)


async def test_page_shows_when_the_connection_is_lost(own_server, page, room_name):
    await open_room(page, own_server, room_name)

    own_server.stop()

    await expect(page.locator("#connection-status")).to_have_attribute("data-state", "closed")
    await expect(page.locator("#chat-message-input")).to_be_disabled()


async def test_two_pages_in_a_room_both_see_what_either_sends(server, new_page, screenshot):
    alice, bob = await new_page(), await new_page()
    await open_room(alice, server, "lobby")
    await open_room(bob, server, "lobby")

    await send(alice, "Hello, is anyone here?")
    await expect(bob.locator("#chat-log li")).to_have_text(["Hello, is anyone here?"])
    await send(bob, "Yes, I see you!")

    conversation = ["Hello, is anyone here?", "Yes, I see you!"]
    await expect(alice.locator("#chat-log li")).to_have_text(conversation)
    await expect(bob.locator("#chat-log li")).to_have_text(conversation)
    await screenshot(alice)


async def test_a_page_in_another_room_sees_nothing(server, new_page, room_name):
    sender, elsewhere = await new_page(), await new_page()
    await open_room(sender, server, room_name)
    await open_room(elsewhere, server, f"{room_name}-next-door")

    await send(sender, "only in this room")
    await expect(sender.locator("#chat-log li")).to_have_text(["only in this room"])
    # A message leaked earlier would reach the other room before its own message comes back.
    await send(elsewhere, "next door")

    await expect(elsewhere.locator("#chat-log li")).to_have_text(["next door"])
