"""The committed build of the explorer is what its sources build to (`npm ci && npm run build`)."""

import shutil
import subprocess
from pathlib import Path

import pytest

from fleetlog.web import STATIC_DIR

UI = Path(__file__).parents[2] / "ui"
SOURCES = ("package.json", "package-lock.json", "tsconfig.json", "vite.config.ts", "index.html")


def files_under(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in root.rglob("*") if p.is_file()}


@pytest.mark.skipif(shutil.which("npm") is None, reason="npm is not installed: cannot rebuild ui/")
def test_the_committed_assets_are_the_build_of_the_sources(tmp_path: Path) -> None:
    work = tmp_path / "ui"
    work.mkdir()
    for name in SOURCES:
        shutil.copy(UI / name, work / name)
    shutil.copytree(UI / "src", work / "src")
    out = tmp_path / "out"
    quiet = ["--no-audit", "--no-fund", "--loglevel=error"]
    subprocess.run(["npm", "ci", *quiet], cwd=work, check=True, capture_output=True)
    build = ["npm", "run", "build", "--", "--outDir", str(out), "--emptyOutDir"]
    subprocess.run(build, cwd=work, check=True, capture_output=True)
    built, committed = files_under(out), files_under(STATIC_DIR)
    assert sorted(built) == sorted(committed), "rebuild: cd ui && npm ci && npm run build"
    changed = [name for name in built if built[name] != committed[name]]
    assert changed == [], "rebuild: cd ui && npm ci && npm run build"
