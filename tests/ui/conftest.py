"""Debian's headless Chromium driven by Playwright (one browser for the session), and a real
fleetlog server seeded through the public API. Playwright never downloads a browser here."""

from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import httpx
import pytest
from playwright.async_api import Browser, Page, async_playwright

from fleetlog.auth.principals import Role
from tests.fixtures.auth import PASSWORD, add_user, bearer, secure_settings
from tests.fixtures.process import Server, running_server
from tests.ui.seed import seed

CHROMIUM = Path("/usr/bin/chromium")
# Without the background-networking flags Chromium keeps calling home, which this closed
# network refuses, many connections at a time.
FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
SCREENSHOTS = Path(__file__).parents[2] / "build" / "ui-screenshots"


@pytest.fixture(scope="session")
def chromium() -> str:
    assert CHROMIUM.exists(), "Chromium is missing: scripts/ensure-services installs it"
    return str(CHROMIUM)


@pytest.fixture(scope="session")
async def browser(chromium: str) -> AsyncIterator[Browser]:
    async with async_playwright() as playwright:
        launched = await playwright.chromium.launch(executable_path=chromium, args=FLAGS)
        yield launched
        await launched.close()


@pytest.fixture(scope="session")
def explorer(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """An embedded server in open mode with the seeded fleet; tests may add logs, never remove."""
    with running_server(tmp_path_factory.mktemp("ui") / "data") as server:
        seed(server.url)
        yield server


@pytest.fixture(scope="session")
async def users_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A data dir holding an admin (ada) and a reader (rita): auth is on."""
    data_dir = tmp_path_factory.mktemp("ui-auth") / "data"
    settings = secure_settings(data_dir)
    await add_user(settings, "ada", Role.ADMIN)
    await add_user(settings, "rita", Role.READER)
    return data_dir


@pytest.fixture(scope="session")
def secured(users_dir: Path) -> Iterator[Server]:
    with running_server(users_dir) as server:
        signed_in = httpx.post(
            f"{server.url}/api/auth/token", data={"username": "ada", "password": PASSWORD}
        )
        seed(server.url, headers=bearer(signed_in.json()["access_token"]))
        yield server


@pytest.fixture
async def page(browser: Browser, explorer: Server) -> AsyncIterator[Page]:
    """A fresh browser context on the explorer; a script error on the page fails the test."""
    context = await browser.new_context(base_url=explorer.url)
    opened = await context.new_page()
    errors: list[str] = []
    opened.on("pageerror", lambda error: errors.append(str(error)))
    yield opened
    await context.close()
    assert errors == []
