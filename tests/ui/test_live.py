"""Live tail in the explorer: a log sent while it is on slides in at the top."""

import json
import uuid

from playwright.async_api import Page, Route, expect

# The bound from a log's 2xx to its row on screen; the server itself promises a second.
SHOWN_WITHIN_MS = 2000


async def send(page: Page, message: str, device: str = "cam-1") -> None:
    log = {"device_id": device, "log_level": "ERROR", "message": message}
    answer = await page.request.post("/api/log", data=log)
    assert answer.status == 200


async def test_a_log_sent_during_the_tail_shows_within_2_s(page: Page) -> None:
    await page.goto("/ui/?q=level:error")
    await page.get_by_role("button", name="Live", exact=True).click()
    await expect(page.locator(".live-status")).to_have_text("live")
    word = f"live{uuid.uuid4().hex[:8]}"
    await send(page, f"valve {word} stuck")
    row = page.locator(".live-rows > li").filter(has_text=word)
    await expect(row).to_be_visible(timeout=SHOWN_WITHIN_MS)
    await expect(row.locator("mark")).to_have_count(0)
    await expect(row.locator(".badge")).to_have_text("ERROR")


async def test_the_tail_follows_the_query_and_pauses(page: Page) -> None:
    await page.goto("/ui/?q=device:gate-3")
    await page.get_by_role("button", name="Live", exact=True).click()
    await expect(page.locator(".live-status")).to_have_text("live")
    await page.get_by_role("button", name="Pause", exact=True).click()
    await send(page, "not for this tail", device="cam-2")
    await send(page, "held while paused", device="gate-3")
    await expect(page.locator(".live-status")).to_have_text("paused, 1 waiting")
    await expect(page.locator(".live-rows > li")).to_have_count(0)
    await page.get_by_role("button", name="Resume", exact=True).click()
    await expect(page.locator(".live-rows > li")).to_have_count(1)
    await expect(page.locator(".live-rows > li .message")).to_have_text("held while paused")


async def test_dropped_logs_are_counted_and_a_lost_stream_resumes_after_the_last_event(
    page: Page,
) -> None:
    """The server's `event: dropped` and a stream that ends, played by a scripted /api/tail."""
    log = {
        "id": 5,
        "device_id": "cam-1",
        "log_level": "INFO",
        "message": "before the gap",
        "log_data": {},
        "created_at": "2026-11-30T14:02:11.120000Z",
        "received_at": "2026-11-30T14:02:11.123456Z",
    }
    streams = [
        f"event: log\ndata: {json.dumps(log)}\nid: 5\n\n"
        'event: dropped\ndata: {"dropped": 37}\n\n',
        ': ping\n\nevent: dropped\ndata: {"dropped": 5}\n\n',
    ]
    resumed_after: list[str | None] = []

    async def scripted_tail(route: Route) -> None:
        resumed_after.append(await route.request.header_value("last-event-id"))
        body = streams.pop(0) if streams else ""
        await route.fulfill(status=200, content_type="text/event-stream", body=body)

    await page.route("**/api/tail*", scripted_tail)
    await page.goto("/ui/?q=device:cam-1")
    await page.get_by_role("button", name="Live", exact=True).click()
    await expect(page.locator(".live-rows .message")).to_have_text("before the gap")
    await expect(page.locator(".dropped")).to_have_text("42 dropped")
    assert resumed_after[:2] == [None, "5"]
