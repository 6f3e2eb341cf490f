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


async def test_index_puts_the_cursor_in_the_room_name_input(server, page):
    await page.goto(f"{server.url}/chat/")

    await assert_on_page(page, "#room-name-input")
    await expect(page.locator("#room-name-input")).to_be_focused()


async def test_typing_a_room_name_and_enter_opens_the_room(server, page, screenshot):
    await open_index(page, server)

    await page.keyboard.type("lobby")
    await screenshot(page)
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
