"""Every page of the explorer, light and dark: no serious or critical axe-core violation, no
sideways scrolling at phone width, and screenshots at desktop and phone width kept as test
artefacts in build/ui-screenshots/."""

import uuid
from collections.abc import Awaitable, Callable
from typing import Any

import pytest
from axe_playwright_python.async_playwright import Axe
from playwright.async_api import Browser, Page, expect

from tests.fixtures.process import Server
from tests.ui.conftest import SCREENSHOTS
from tests.ui.test_auth import sign_in

DESKTOP = {"width": 1280, "height": 800}
PHONE = {"width": 390, "height": 844}
SERIOUS = {"serious", "critical"}


async def search_ready(page: Page) -> None:
    await page.locator("#results .row-head").first.click()
    await expect(page.locator("#results .details")).to_be_visible()
    await expect(page.locator("section.chart")).to_have_attribute("data-interval", "5m")


async def fleet_ready(page: Page) -> None:
    await expect(page.locator("table.fleet td.spark canvas").first).to_be_visible()


async def keys_ready(page: Page) -> None:
    await sign_in(page, "ada")
    await page.fill("#key-name", f"camera-{uuid.uuid4().hex[:8]}")
    await page.get_by_role("button", name="Create key", exact=True).click()
    await expect(page.locator("#created-key")).to_be_visible()


async def signin_ready(page: Page) -> None:
    await expect(page.locator("#username")).to_be_focused()


Ready = Callable[[Page], Awaitable[None]]
# Each page, and whether it is looked at on the server with users (auth on) or the open one.
PAGES: dict[str, tuple[str, Ready, bool]] = {
    "search": ("/ui/?q=valve OR pressure&since=24h", search_ready, False),
    "fleet": ("/ui/fleet", fleet_ready, False),
    "keys": ("/ui/keys", keys_ready, True),
    "signin": ("/ui/", signin_ready, True),
}


def serious(violations: list[dict[str, Any]]) -> list[str]:
    return [
        f"{v['id']} ({v['impact']}): {[node['target'] for node in v['nodes']]}"
        for v in violations
        if v["impact"] in SERIOUS
    ]


@pytest.mark.parametrize("scheme", ["light", "dark"])
@pytest.mark.parametrize("name", list(PAGES))
async def test_each_page_is_accessible_and_fits_a_phone(
    browser: Browser, explorer: Server, secured: Server, name: str, scheme: str
) -> None:
    path, ready, auth_on = PAGES[name]
    server = secured if auth_on else explorer
    context = await browser.new_context(
        base_url=server.url, color_scheme=scheme, viewport=DESKTOP, reduced_motion="reduce"
    )
    page = await context.new_page()
    await page.goto(path)
    await ready(page)
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    await page.screenshot(path=SCREENSHOTS / f"{name}-{scheme}-desktop.png")
    results = await Axe().run(page)
    assert serious(results.response["violations"]) == []
    await page.set_viewport_size(PHONE)
    await page.screenshot(path=SCREENSHOTS / f"{name}-{scheme}-phone.png")
    assert await page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]
    await context.close()
