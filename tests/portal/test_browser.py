"""The portal in a real browser: Debian's Chromium, headless, driven by playwright-core from npm
(portal/e2e/*.mjs, run with node), against a live stack with the demo data of three cities
seeded and the storylines' demonstration products prepared the way `scripts/run` prepares them.
The stack's maps ask for tiles from a tile server of the test's own on 127.0.0.1 (never
OpenStreetMap's): the first test draws its tiles, then the server stops and the maps draw CURE's
own basemap, in that test and in those after it.

Screenshots of each main page, at desktop and phone widths, go to var/test-output/portal/; with
CURE_PORTAL_DOCS_SCREENSHOTS=1 the README's are copied into docs/.
"""

import os
import re
import shutil
import subprocess
import threading
import time
from collections.abc import Iterator
from datetime import date
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import numpy as np
import pytest

from cure.demo.rasters import city_by_name
from cure.demo.seed import seed
from cure.demo.showcase import prepare
from cure.kit.resources import Resources
from cure.kit.state import state_of
from cure.quicklooks.render import encode_png
from tests.conftest import ROOT, free_port, running_stack, write_apps_dir

PORTAL = ROOT / "portal"
OUTPUT = ROOT / "var" / "test-output" / "portal"
CHROMIUM = os.environ.get("CURE_CHROMIUM", "/usr/bin/chromium")
DAY = date(2024, 7, 15)
README_SCREENSHOTS = {
    "storyline-desktop.png": "portal-storyline.png",
    "order-result-desktop.png": "portal-order.png",
}


def _newest_source() -> float:
    sources = [*PORTAL.joinpath("src").rglob("*"), *PORTAL.glob("*.json"), PORTAL / "index.html"]
    return max(path.stat().st_mtime for path in sources if path.is_file())


@pytest.fixture(scope="module")
def built() -> None:
    """The browser tests need the built portal, its node modules and Chromium: scripts/test
    provides all three (scripts/lib.sh: ensure_portal, ensure_test_tools)."""
    index = PORTAL / "dist" / "index.html"
    assert index.is_file() and index.stat().st_mtime >= _newest_source(), (
        "portal/dist is missing or older than portal/src: run scripts/test, or "
        "`npm ci && npm run build` in portal/"
    )
    assert (PORTAL / "node_modules" / "playwright-core").is_dir(), "run `npm ci` in portal/"
    assert Path(CHROMIUM).is_file(), f"no Chromium at {CHROMIUM}: apt-get install chromium"


@pytest.fixture(scope="module")
async def seeded(app, sessionmaker, settings) -> None:
    cities = [city_by_name(name) for name in ("Vienna", "Berlin", "Madrid")]
    await seed(
        Resources(settings, state_of(app).db.engine, sessionmaker), cities=cities, dates=[DAY]
    )


def _tile_png() -> bytes:
    """A light tile with a darker edge: a grid on the map where the tiles are drawn."""
    rgba = np.full((256, 256, 4), (236, 232, 222, 255), dtype=np.uint8)
    rgba[0, :] = rgba[:, 0] = (170, 160, 140, 255)
    return encode_png(rgba)


class TileServer:
    """XYZ tiles on 127.0.0.1 at a fixed port, which it can stop answering (the port closed) and
    start again; it keeps the paths asked for."""

    def __init__(self) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}/tiles/{{z}}/{{x}}/{{y}}.png"
        self.paths: list[str] = []
        self._server: ThreadingHTTPServer | None = None

    def start(self) -> None:
        if self._server is not None:
            return
        png, paths = _tile_png(), self.paths

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 (the standard library's name)
                paths.append(self.path)
                self.send_response(200)
                self.send_header("Content-Type", "image/png")
                self.send_header("Content-Length", str(len(png)))
                self.end_headers()
                self.wfile.write(png)

            def log_message(self, format: str, *args: object) -> None:  # noqa: A002
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        threading.Thread(target=self._server.serve_forever, daemon=True).start()

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None


@pytest.fixture(scope="module")
def tile_server() -> Iterator[TileServer]:
    server = TileServer()
    server.start()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def stack(built, seeded, engine, tile_server, tmp_path_factory):
    # The probe app (it can sleep, to be cancelled) besides the real apps.
    apps = write_apps_dir(
        tmp_path_factory.mktemp("portal-apps"),
        probe_timeout=120,
        also=("suhi", "urban_green", "flood_susceptibility", "heat_exposure", "air_quality"),
    )
    with running_stack(
        "portal", CURE_APPS_DIR=str(apps), CURE_PORTAL_TILE_URL=tile_server.url
    ) as live:
        yield live


@pytest.fixture(scope="module")
async def prepared(stack, app, sessionmaker, settings) -> None:
    """The storylines' demonstration products: ordered, run by the stack, published."""
    report = await prepare(
        Resources(settings, state_of(app).db.engine, sessionmaker), timeout_seconds=120
    )
    assert report.ok, report.failed
    assert len(report.published) == 7


def run_scenario(stack, name: str, *args: str) -> str:
    OUTPUT.mkdir(parents=True, exist_ok=True)
    env = {
        **os.environ,
        "CURE_URL": stack.url,
        "CURE_OUTPUT": str(OUTPUT),
        "CURE_CHROMIUM": CHROMIUM,
    }
    started = time.monotonic()
    done = subprocess.run(
        ["node", f"e2e/{name}.mjs", *args],
        cwd=PORTAL,
        env=env,
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )
    output = done.stdout + done.stderr
    print(f"{name}: {time.monotonic() - started:.1f} s\n{output}")
    assert done.returncode == 0, output
    assert f"ok: {'-'.join((name, *args))}" in done.stdout
    return output


TILE_PATH = re.compile(r"/tiles/(\d+)/(\d+)/(\d+)\.png")


def test_the_maps_draw_the_configured_tiles(stack, tile_server) -> None:
    tile_server.start()
    tile_server.paths.clear()
    run_scenario(stack, "basemap", "tiles")
    assert len(tile_server.paths) >= 4
    for path in tile_server.paths:
        match = TILE_PATH.fullmatch(path)
        assert match, path
        z, x, y = (int(n) for n in match.groups())
        assert 0 <= x < 2**z and 0 <= y < 2**z, path


def test_where_the_tiles_do_not_answer_the_maps_draw_cures_own_basemap(
    stack, prepared, tile_server
) -> None:
    """The same tile URL with nothing listening on its port: the page falls back to the
    basemap CURE serves (the scenario checks that its endpoint was asked and its shapes drawn)."""
    tile_server.stop()
    tile_server.paths.clear()
    run_scenario(stack, "basemap", "fallback")
    assert tile_server.paths == []


def test_a_visitor_sees_a_storyline_with_its_map_and_charts(stack, prepared) -> None:
    run_scenario(stack, "storyline")
    for name in ("storyline-desktop", "storyline-phone", "catalogue-desktop"):
        assert (OUTPUT / f"{name}.png").stat().st_size > 10_000


def test_a_customer_orders_suhi_by_drawing_watches_it_and_downloads_it(stack, prepared) -> None:
    run_scenario(stack, "order")
    tiffs = sorted(OUTPUT.glob("suhi-*.tif"), key=lambda p: p.stat().st_mtime)
    assert tiffs and tiffs[-1].read_bytes()[:4] in (b"II*\x00", b"MM\x00*")
    for name in (
        "order-form-desktop",
        "order-result-desktop",
        "orders-desktop",
        "order-form-phone",
    ):
        assert (OUTPUT / f"{name}.png").stat().st_size > 10_000
    if os.environ.get("CURE_PORTAL_DOCS_SCREENSHOTS") == "1":
        for source, target in README_SCREENSHOTS.items():
            shutil.copyfile(OUTPUT / source, ROOT / "docs" / target)


def test_a_customer_cancels_a_running_order(stack) -> None:
    run_scenario(stack, "cancel")


def test_logging_out_ends_the_refresh_token(stack) -> None:
    run_scenario(stack, "logout")
