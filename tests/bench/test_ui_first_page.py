"""The explorer's first page of results on a fleet's week of 1 million logs, embedded
(`pytest -m bench tests/bench/test_ui_first_page.py`): from the start of navigation to the
first rows on screen, as the app marks it (docs/ui.md). Reported in
build/bench/ui-first-page.json, never asserted on. FLEETLOG_UI_BENCH_LOGS seeds fewer logs
for a quick look."""

import json
import os
import time
from pathlib import Path
from statistics import median
from typing import Any

import httpx
import pytest
from playwright.async_api import Browser, async_playwright
from rich.console import Console

from fleetlog.bench.corpus import Corpus
from fleetlog.bench.query_bench import MAX_EVENT_AGE_S
from fleetlog.bench.seeding import seed, seed_plan
from fleetlog.bench.spawn import Target, spawn_stack
from tests.ui.conftest import CHROMIUM, FLAGS

# Seeding a million logs takes minutes, past the suite's per-test bound.
pytestmark = [pytest.mark.bench, pytest.mark.timeout(1800)]

LOGS = int(os.environ.get("FLEETLOG_UI_BENCH_LOGS", "1000000"))
LOADS = 5
# What a person opens: the default range, errors only, and a word most messages do not hold.
SEARCHES = ("/ui/", "/ui/?q=level>=error", "/ui/?q=valve")
FIRST_RESULTS = "fleetlog:first-results"
REPORT = Path(__file__).parents[2] / "build" / "bench" / "ui-first-page.json"


async def seeded(target: Target) -> Corpus:
    corpus = Corpus(seed=7, logs=LOGS, anchor=time.time())
    host, port = target.url.removeprefix("http://").split(":")
    plan = seed_plan(corpus, (host, int(port)), connections=4, processes=1, headers=())
    async with httpx.AsyncClient(base_url=target.url, timeout=120) as client:
        await seed(corpus, plan, target, client, Console(quiet=True), settle_s=600)
    return corpus


async def first_results_ms(browser: Browser, url: str) -> dict[str, float]:
    """One cold load (a new context: no cache): when the first rows were on screen."""
    context = await browser.new_context()
    page = await context.new_page()
    await page.goto(url)
    await page.wait_for_function(
        f"() => performance.getEntriesByName('{FIRST_RESULTS}').length > 0"
    )
    shown: float = await page.evaluate(
        f"() => performance.getEntriesByName('{FIRST_RESULTS}')[0].startTime"
    )
    rows: int = await page.locator("#results > li").count()
    await context.close()
    return {"first_results_ms": round(shown, 1), "rows": rows}


async def test_first_page_of_results_on_a_million_logs() -> None:
    settings = {"max_event_age": str(MAX_EVENT_AGE_S)}
    with spawn_stack("embedded", workers=1, settings=settings) as target:
        await seeded(target)
        async with async_playwright() as playwright:
            browser = await playwright.chromium.launch(executable_path=str(CHROMIUM), args=FLAGS)
            report: dict[str, Any] = {"logs": LOGS, "loads": LOADS, "searches": {}}
            for search in SEARCHES:
                loads = [await first_results_ms(browser, target.url + search) for _ in range(LOADS)]
                times = [load["first_results_ms"] for load in loads]
                assert all(load["rows"] > 0 for load in loads)
                report["searches"][search] = {"median_ms": median(times), "max_ms": max(times)}
            await browser.close()
    REPORT.parent.mkdir(parents=True, exist_ok=True)
    REPORT.write_text(json.dumps(report, indent=2))
