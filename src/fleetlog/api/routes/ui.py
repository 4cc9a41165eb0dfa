"""The log explorer at /ui: its built assets, and its page for every other /ui path, so a
link to any view (`/ui/fleet`, `/ui/?q=…`) opens the app there. The app reads and writes
only through the public API."""

from pathlib import Path

from fastapi import APIRouter
from fastapi.responses import FileResponse

from fleetlog.errors import NotFound
from fleetlog.web import STATIC_DIR

router = APIRouter(include_in_schema=False)

ASSETS_PREFIX = "assets/"
# Asset names carry a hash of their content, so a browser may keep them for good; the page
# that names them is checked again each time, so an upgrade is picked up at once.
ASSET_HEADERS = {"Cache-Control": "public, max-age=31536000, immutable"}
PAGE_HEADERS = {
    "Cache-Control": "no-cache",
    "Content-Security-Policy": (
        "default-src 'self'; img-src 'self' data:; style-src 'self' 'unsafe-inline'; "
        "object-src 'none'; base-uri 'none'; frame-ancestors 'none'"
    ),
    "Referrer-Policy": "no-referrer",
    "X-Content-Type-Options": "nosniff",
}


def asset_files(root: Path) -> dict[str, Path]:
    """Every built asset by its path under /ui/: only these files are ever read from disk."""
    return {
        path.relative_to(root).as_posix(): path
        for path in (root / ASSETS_PREFIX).rglob("*")
        if path.is_file()
    }


ASSETS = asset_files(STATIC_DIR)


@router.api_route("/ui", methods=["GET", "HEAD"])
@router.api_route("/ui/{path:path}", methods=["GET", "HEAD"])
async def explorer(path: str = "") -> FileResponse:
    if not path.startswith(ASSETS_PREFIX):
        return FileResponse(STATIC_DIR / "index.html", headers=PAGE_HEADERS)
    found = ASSETS.get(path)
    if found is None:
        raise NotFound(f"/ui/{path} is not one of the explorer's files")
    return FileResponse(found, headers=ASSET_HEADERS)
