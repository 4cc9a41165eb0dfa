"""Searching in the explorer: narrowing, syntax errors, highlights, rows, the URL, the keys."""

import re
from datetime import datetime
from zoneinfo import ZoneInfo

from playwright.async_api import Browser, Page, expect

from tests.fixtures.process import Server
from tests.ui.seed import LOGS_PER_DEVICE

ROWS = "#results > li"
# A zone 5 h 45 min off UTC: no test machine's own zone could pass for it by chance.
ZONE = "Asia/Kathmandu"


async def logs_in_range(page: Page, **params: str) -> int:
    """What `GET /api/logs/count` counts, through the page's own connection to the server."""
    answer = await page.request.get("/api/logs/count", params=params)
    return sum(bucket["count"] for bucket in (await answer.json())["buckets"])


async def search(page: Page, query: str) -> None:
    await page.fill("#q", query)
    await page.press("#q", "Enter")
    await expect(page.locator(".results-end")).not_to_have_text("Searching…")


async def test_search_narrows_the_results(page: Page) -> None:
    await page.goto("/ui/")
    await expect(page.locator(ROWS)).to_have_count(100)
    await search(page, "valve level:error")
    rows = page.locator(ROWS)
    await expect(rows.first).to_be_visible()
    assert 0 < await rows.count() < 100
    for message in await page.locator(f"{ROWS} .message").all_inner_texts():
        assert "valve" in message.split()
    assert await page.locator(f"{ROWS} .badge").all_inner_texts() == ["ERROR"] * await rows.count()
    await expect(page.locator(f"{ROWS} mark").first).to_have_text("valve")


async def test_a_syntax_error_shows_at_its_position(page: Page) -> None:
    query = "valve AND (pump"
    answer = await page.request.get("/api/logs", params={"q": query})
    position = (await answer.json())["detail"][0]["position"]
    await page.goto("/ui/")
    await search(page, query)
    error = page.locator("#q-error")
    await expect(error).to_be_visible()
    await expect(error).to_have_attribute("data-position", str(position))
    await expect(error).to_contain_text(f"position {position}")
    await expect(page.locator("#q")).to_have_attribute("aria-invalid", "true")
    await expect(page.locator(ROWS)).to_have_count(0)


async def test_the_url_holds_query_and_range(page: Page) -> None:
    await page.goto("/ui/")
    await search(page, "heartbeat")
    await page.click("button[data-span='1h']")
    await expect(page).to_have_url("/ui/?q=heartbeat&since=1h")
    await page.reload()
    await expect(page.locator("#q")).to_have_value("heartbeat")
    await expect(page.locator("button[data-span='1h']")).to_have_attribute("aria-pressed", "true")
    await expect(page.locator(f"{ROWS} mark").first).to_have_text("heartbeat")
    await page.go_back()
    await expect(page).to_have_url("/ui/?q=heartbeat&since=24h")


async def test_a_row_opens_its_data_and_adds_an_attribute_to_the_query(page: Page) -> None:
    # pump-7: the one seeded device other tests send no logs for.
    await page.goto("/ui/?q=device:pump-7")
    await page.locator(f"{ROWS} .row-head").first.click()
    details = page.locator(f"{ROWS} .details").first
    await expect(details.locator("pre")).to_contain_text('"site": "south"')
    await details.get_by_role("button", name="+ attr.site:south").click()
    await expect(page.locator("#q")).to_have_value("device:pump-7 attr.site:south")
    await expect(page.locator(ROWS)).to_have_count(LOGS_PER_DEVICE)


async def test_scrolling_down_loads_the_next_pages(page: Page) -> None:
    total = await logs_in_range(page, since="24h")
    await page.goto("/ui/")
    rows = page.locator(ROWS)
    for shown in (100, 200, total):
        await expect(rows).to_have_count(shown)
        await page.locator(".results-end").scroll_into_view_if_needed()
    await expect(page.locator(".results-end")).to_have_text("No more logs in this range.")


async def test_slash_focuses_the_search_and_escape_clears_it(page: Page) -> None:
    await page.goto("/ui/?q=pump")
    await page.locator("h1, .brand").first.focus()
    await page.keyboard.press("/")
    await expect(page.locator("#q")).to_be_focused()
    await page.keyboard.press("Escape")
    await expect(page.locator("#q")).to_have_value("")


async def test_times_are_in_the_browsers_zone_with_utc_on_hover(
    browser: Browser, explorer: Server
) -> None:
    context = await browser.new_context(base_url=explorer.url, timezone_id=ZONE)
    page = await context.new_page()
    await page.goto("/ui/")
    first = page.locator(f"{ROWS} time").first
    await expect(first).to_have_attribute("title", re.compile(r"^[-\d]{10} [:.\d]{12} UTC$"))
    utc = datetime.fromisoformat(await first.get_attribute("datetime") or "")
    assert utc.astimezone(ZoneInfo(ZONE)).strftime("%I:%M:%S") in await first.inner_text()
    await context.close()
