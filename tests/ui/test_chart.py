"""The volume chart: stacked bars by level that add up to the counts API, and zooming."""

import re
from datetime import datetime
from urllib.parse import parse_qs, urlsplit

from playwright.async_api import Page, expect

from tests.ui.test_search import logs_in_range

CHART = "section.chart"
# The chart's canvas, counted in pixels painted in one of the level colors.
LEVEL_PIXELS = """() => {
  const colors = [[148, 163, 184], [59, 130, 246], [245, 158, 11], [239, 68, 68], [162, 28, 175]];
  const canvas = document.querySelector(".plot canvas");
  const { data } = canvas.getContext("2d").getImageData(0, 0, canvas.width, canvas.height);
  let painted = 0;
  for (let i = 0; i < data.length; i += 4) {
    if (colors.some(([r, g, b]) => data[i] === r && data[i + 1] === g && data[i + 2] === b)) {
      painted += 1;
    }
  }
  return painted;
}"""


def range_of(url: str) -> tuple[str, str]:
    params = parse_qs(urlsplit(url).query)
    return params["since"][0], params.get("until", [""])[0]


async def test_the_bars_add_up_to_the_counts_api(page: Page) -> None:
    await page.goto("/ui/?q=level:error OR level:critical&since=24h")
    chart = page.locator(CHART)
    await expect(chart).to_have_attribute("data-total", re.compile(r"^\d+$"))
    total = int(await chart.get_attribute("data-total") or "")
    interval = await chart.get_attribute("data-interval") or ""
    counted = await logs_in_range(
        page, q="level:error OR level:critical", since="24h", interval=interval
    )
    assert total == counted > 0
    await expect(page.locator(".chart-summary")).to_contain_text(f"{counted} logs in range")
    assert await page.evaluate(LEVEL_PIXELS) > 100


async def drag(page: Page, start: float, end: float) -> None:
    """Drags across the plot from one fraction of its width to another."""
    box = await page.locator(".plot .u-over").bounding_box()
    assert box is not None
    y = box["y"] + box["height"] / 2
    await page.mouse.move(box["x"] + box["width"] * start, y)
    await page.mouse.down()
    await page.mouse.move(box["x"] + box["width"] * end, y, steps=8)
    await page.mouse.up()


def span_s(url: str) -> float:
    since, until = range_of(url)
    return (datetime.fromisoformat(until) - datetime.fromisoformat(since)).total_seconds()


async def test_click_drag_zooms_the_range(page: Page) -> None:
    await page.goto("/ui/?since=24h")
    chart = page.locator(CHART)
    await expect(chart).to_have_attribute("data-interval", "5m")
    await drag(page, 0.5, 0.75)
    await expect(page).to_have_url(re.compile(r"until="))
    assert 5 * 3600 < span_s(page.url) < 7 * 3600
    await expect(page.locator("details.custom")).to_have_class(re.compile("active"))
    await expect(chart).to_have_attribute("data-interval", "1m")
    for pressed in await page.locator("button.quick").all():
        await expect(pressed).to_have_attribute("aria-pressed", "false")


async def test_clicking_a_bar_narrows_to_its_bucket(page: Page) -> None:
    await page.goto("/ui/?since=1h")
    chart = page.locator(CHART)
    await expect(chart).to_have_attribute("data-interval", "1m")
    box = await page.locator(".plot .u-over").bounding_box()
    assert box is not None
    await page.mouse.click(box["x"] + box["width"] * 0.5, box["y"] + box["height"] / 2)
    await expect(page).to_have_url(re.compile(r"until="))
    assert span_s(page.url) == 60
    since, until = range_of(page.url)
    total = await logs_in_range(page, since=since, until=until, interval="1m")
    await expect(chart).to_have_attribute("data-total", str(total))
