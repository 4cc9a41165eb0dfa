"""Signing in to the explorer when auth is on, token refresh, and the admins' key page."""

import json
from collections.abc import AsyncIterator

import pytest
from playwright.async_api import Browser, Dialog, Page, expect

from tests.fixtures.auth import PASSWORD, bearer
from tests.fixtures.process import Server
from tests.ui.seed import DEVICES

TOKENS = "fleetlog.tokens"


@pytest.fixture
async def tab(browser: Browser, secured: Server) -> AsyncIterator[Page]:
    context = await browser.new_context(base_url=secured.url)
    opened = await context.new_page()
    yield opened
    await context.close()


async def sign_in(page: Page, name: str, password: str = PASSWORD) -> None:
    await page.fill("#username", name)
    await page.fill("#password", password)
    await page.get_by_role("button", name="Sign in", exact=True).click()


async def test_sign_in_is_required_and_leads_to_the_page_asked_for(tab: Page) -> None:
    await tab.goto("/ui/fleet")
    await expect(tab).to_have_url("/ui/signin?next=%2Fui%2Ffleet")
    await expect(tab.locator("table.fleet")).to_have_count(0)
    await sign_in(tab, "ada", "not the password")
    await expect(tab.locator(".form-error")).not_to_be_empty()
    await sign_in(tab, "ada")
    await expect(tab).to_have_url("/ui/fleet")
    await expect(tab.locator("table.fleet tbody th")).to_have_count(len(DEVICES))
    await tab.get_by_role("button", name="Sign out", exact=True).click()
    await expect(tab.locator("#username")).to_be_visible()


async def test_an_expired_access_token_is_refreshed(tab: Page) -> None:
    await tab.goto("/ui/")
    await sign_in(tab, "rita")
    await expect(tab.locator("#results > li").first).to_be_visible()
    before = await tab.evaluate(f"JSON.parse(sessionStorage.getItem('{TOKENS}'))")
    stale = json.dumps({**before, "access_token": before["access_token"][:-4] + "AAAA"})
    await tab.evaluate("([key, value]) => sessionStorage.setItem(key, value)", [TOKENS, stale])
    await tab.get_by_role("link", name="Fleet", exact=True).click()
    await expect(tab.locator("table.fleet tbody th")).to_have_count(len(DEVICES))
    after = await tab.evaluate(f"JSON.parse(sessionStorage.getItem('{TOKENS}'))")
    assert after["refresh_token"] != before["refresh_token"]


async def test_a_reader_cannot_reach_the_key_page(tab: Page) -> None:
    await tab.goto("/ui/keys")
    await sign_in(tab, "rita")
    await expect(tab.locator("h1")).to_have_text("Only admins manage API keys.")
    await expect(tab.locator("table.keys")).to_have_count(0)
    await expect(tab.get_by_role("link", name="API keys")).to_have_count(0)
    answer = await tab.request.get("/api/keys", headers=await bearer_of(tab))
    assert answer.status == 403


async def accept(dialog: Dialog) -> None:
    await dialog.accept()


async def bearer_of(page: Page) -> dict[str, str]:
    tokens = await page.evaluate(f"JSON.parse(sessionStorage.getItem('{TOKENS}'))")
    return bearer(tokens["access_token"])


async def test_an_admin_creates_and_revokes_a_key(tab: Page) -> None:
    await tab.goto("/ui/")
    await sign_in(tab, "ada")
    await tab.get_by_role("link", name="API keys").click()
    await tab.fill("#key-name", "door-sensors")
    await tab.select_option("#key-scope", "ingest")
    await tab.fill("#key-prefix", "door-")
    await tab.get_by_role("button", name="Create key", exact=True).click()
    secret = await tab.locator("#created-key").input_value()
    await expect(tab.locator(".created-key")).to_contain_text("not shown again")
    row = tab.locator("tr[data-key='door-sensors']")
    await expect(row).to_contain_text("ingest")
    log = {"device_id": "door-1", "log_level": "INFO", "message": "opened"}
    sent = await tab.request.post("/api/log", data=log, headers={"X-API-Key": secret})
    assert sent.status == 200
    tab.once("dialog", accept)
    await row.get_by_role("button", name="Revoke door-sensors").click()
    await expect(row.get_by_role("button")).to_have_count(0)
    await expect(row.locator("time")).to_have_count(2)
    refused = await tab.request.post("/api/log", data=log, headers={"X-API-Key": secret})
    assert refused.status == 401
