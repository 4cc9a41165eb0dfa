"""`/docs` and `/redoc` render with the network cut off from everything but the server."""

from collections.abc import AsyncIterator
from urllib.parse import urlsplit

import pytest
from playwright.async_api import Browser, Page, Route, expect

from tests.fixtures.process import Server


@pytest.fixture
async def offline(browser: Browser, explorer: Server) -> AsyncIterator[tuple[Page, list[str]]]:
    """A page that can reach the server only; it answers with the requests it cut off."""
    context = await browser.new_context(base_url=explorer.url)
    server = urlsplit(explorer.url).netloc
    refused: list[str] = []

    async def only_the_server(route: Route) -> None:
        if urlsplit(route.request.url).netloc == server:
            await route.continue_()
        else:
            refused.append(route.request.url)
            await route.abort("internetdisconnected")

    await context.route("**/*", only_the_server)
    yield await context.new_page(), refused
    await context.close()


async def test_swagger_ui_renders_its_operations_offline(
    offline: tuple[Page, list[str]],
) -> None:
    page, refused = offline
    await page.goto("/docs")
    await expect(page.locator(".opblock-summary-path[data-path='/api/logs']").first).to_be_visible()
    assert await page.locator(".opblock").count() > 20
    await page.get_by_role("button", name="Authorize").first.click()
    dialog = page.locator(".dialog-ux")
    await expect(dialog).to_contain_text("OAuth2, password")
    await expect(dialog).to_contain_text("/api/auth/token")
    await expect(dialog).to_contain_text("X-API-Key")
    await dialog.locator("#oauth_username").fill("ada")
    await dialog.locator("#oauth_password").fill("a password")
    async with page.expect_response("**/api/auth/token") as signing_in:
        await dialog.locator("button.modal-btn.authorize").first.click()
    assert (await signing_in.value).status == 401
    assert refused == []


async def test_redoc_renders_its_operations_offline(offline: tuple[Page, list[str]]) -> None:
    page, refused = offline
    await page.goto("/redoc")
    await expect(page.locator("h2", has_text="Search").first).to_be_visible(timeout=15000)
    await expect(page.get_by_text("/api/logs/count").first).to_be_attached()
    assert refused == []
