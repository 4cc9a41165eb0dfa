"""The fleet view: every seeded device, sortable, with sparklines; a device opens its search."""

import re

from playwright.async_api import Page, expect

from tests.ui.seed import DEVICES

DEVICE_CELLS = "table.fleet tbody th"


async def test_the_fleet_view_lists_the_seeded_devices(page: Page) -> None:
    await page.goto("/ui/fleet")
    await expect(page.locator(DEVICE_CELLS)).to_have_count(len(DEVICES))
    assert sorted(await page.locator(DEVICE_CELLS).all_inner_texts()) == sorted(DEVICES)
    await expect(page.locator("table.fleet td.spark canvas")).to_have_count(len(DEVICES))
    await expect(page.locator("table.fleet td.spark").first).to_contain_text("logs in 24h")


async def test_sorting_by_a_column_orders_the_devices(page: Page) -> None:
    await page.goto("/ui/fleet")
    await page.get_by_role("link", name="Device", exact=True).click()
    await expect(page).to_have_url(re.compile(r"sort=device&order=desc"))
    await expect(page.locator(DEVICE_CELLS).first).to_have_text(max(DEVICES))
    await page.get_by_role("link", name="Device", exact=True).click()
    await expect(page).to_have_url(re.compile(r"sort=device&order=asc"))
    await expect(page.locator(DEVICE_CELLS).first).to_have_text(min(DEVICES))
    header = page.locator("th[aria-sort]")
    await expect(header).to_have_attribute("aria-sort", "ascending")


async def test_a_device_opens_its_search(page: Page) -> None:
    await page.goto("/ui/fleet")
    await page.get_by_role("link", name="pump-7").click()
    await expect(page.locator("#q")).to_have_value("device:pump-7")
    await expect(page.locator("#results .device").first).to_be_visible()
    assert set(await page.locator("#results .device").all_inner_texts()) == {"pump-7"}
