"""How /ui, /docs and /redoc are served: the app for every /ui path, assets from the package."""

import re

import httpx

from fleetlog.web import STATIC_DIR

ASSET = re.compile(r'/ui/(assets/[^"]+\.js)"')


def entry_script() -> str:
    found = ASSET.search((STATIC_DIR / "index.html").read_text())
    assert found is not None
    return found.group(1)


async def test_every_ui_path_answers_the_app(client: httpx.AsyncClient) -> None:
    for path in ("/ui", "/ui/", "/ui/fleet", "/ui/keys", "/ui/no/such/page?q=x"):
        answer = await client.get(path)
        assert answer.status_code == 200, path
        assert answer.headers["content-type"].startswith("text/html")
        assert answer.headers["cache-control"] == "no-cache"
        assert "default-src 'self'" in answer.headers["content-security-policy"]
        assert entry_script() in answer.text


async def test_assets_are_served_for_good_and_unknown_ones_are_a_json_404(
    client: httpx.AsyncClient,
) -> None:
    answer = await client.get(f"/ui/{entry_script()}")
    assert answer.status_code == 200
    assert "javascript" in answer.headers["content-type"]
    assert "immutable" in answer.headers["cache-control"]
    for path in (
        "/ui/assets/nope.js",
        "/ui/assets/%2e%2e/index.html",
        "/ui/assets/%2e%2e/%2e%2e/app.py",
    ):
        missing = await client.get(path)
        assert missing.status_code == 404, path
        assert missing.json()["error"] == "not_found"


async def test_the_docs_pages_load_their_scripts_from_the_server(
    client: httpx.AsyncClient,
) -> None:
    for page in ("/docs", "/redoc"):
        html = (await client.get(page)).text
        urls = re.findall(r'(?:src|href)="([^"]+)"', html)
        assert urls
        assert all(url.startswith("/docs/assets/") for url in urls), urls
        for url in urls:
            assert (await client.get(url)).status_code == 200, url
    assert (await client.get("/docs/oauth2-redirect")).status_code == 200
    assert (await client.get("/docs/assets/other.js")).status_code == 404


async def test_the_service_names_the_explorer(client: httpx.AsyncClient) -> None:
    assert (await client.get("/")).json()["endpoints"]["ui"] == "/ui"
