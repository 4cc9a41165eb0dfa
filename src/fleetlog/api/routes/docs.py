"""`/docs` (Swagger UI) and `/redoc` with their scripts served from the package, so they work
on a machine with no internet access. The scripts come from fastapi-offline's bundle of
swagger-ui-dist and ReDoc; Swagger's Authorize keeps both schemes and the password flow."""

from pathlib import Path

import fastapi_offline
from fastapi import APIRouter, Request
from fastapi.openapi.docs import (
    get_redoc_html,
    get_swagger_ui_html,
    get_swagger_ui_oauth2_redirect_html,
)
from fastapi.responses import FileResponse, HTMLResponse

from fleetlog.errors import NotFound

router = APIRouter(include_in_schema=False)

BUNDLE = Path(fastapi_offline.__file__).parent / "static"
ASSET_URL = "/docs/assets/{name}"
ASSETS = {path.name: path for path in BUNDLE.iterdir() if path.suffix in {".js", ".css", ".png"}}
OAUTH2_REDIRECT_URL = "/docs/oauth2-redirect"
ASSET_HEADERS = {"Cache-Control": "public, max-age=86400"}
# Nothing leaves the server's origin: ReDoc would fetch its maker's logo from a CDN, and
# Swagger UI would send the document to an online validator.
PAGE_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'self'; script-src 'self' 'unsafe-inline'; style-src 'self' 'unsafe-inline'; "
        "img-src 'self' data:; worker-src 'self' blob:; object-src 'none'; base-uri 'none'"
    )
}


def with_headers(page: HTMLResponse) -> HTMLResponse:
    page.headers.update(PAGE_HEADERS)
    return page


def prefixed(request: Request, path: str) -> str:
    """`path` under the proxy's root path, as FastAPI's own docs pages write their URLs."""
    root: str = request.scope.get("root_path", "")
    return root.rstrip("/") + path


@router.get("/docs")
async def swagger_ui(request: Request) -> HTMLResponse:
    app = request.app
    page = get_swagger_ui_html(
        openapi_url=prefixed(request, app.openapi_url),
        title=f"{app.title} - Swagger UI",
        swagger_js_url=prefixed(request, ASSET_URL.format(name="swagger-ui-bundle.js")),
        swagger_css_url=prefixed(request, ASSET_URL.format(name="swagger-ui.css")),
        swagger_favicon_url=prefixed(request, ASSET_URL.format(name="favicon.png")),
        oauth2_redirect_url=prefixed(request, OAUTH2_REDIRECT_URL),
        init_oauth=app.swagger_ui_init_oauth,
        swagger_ui_parameters={**(app.swagger_ui_parameters or {}), "validatorUrl": None},
    )
    return with_headers(page)


@router.get(OAUTH2_REDIRECT_URL)
async def swagger_ui_redirect() -> HTMLResponse:
    return get_swagger_ui_oauth2_redirect_html()


@router.get("/redoc")
async def redoc(request: Request) -> HTMLResponse:
    app = request.app
    page = get_redoc_html(
        openapi_url=prefixed(request, app.openapi_url),
        title=f"{app.title} - ReDoc",
        redoc_js_url=prefixed(request, ASSET_URL.format(name="redoc.standalone.js")),
        redoc_favicon_url=prefixed(request, ASSET_URL.format(name="favicon.png")),
        with_google_fonts=False,
    )
    return with_headers(page)


@router.get(ASSET_URL.format(name="{name}"))
async def asset(name: str) -> FileResponse:
    found = ASSETS.get(name)
    if found is None:
        raise NotFound(f"/docs/assets/{name} is not one of the documentation's files")
    return FileResponse(found, headers=ASSET_HEADERS)
