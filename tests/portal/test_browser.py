"""The portal in a real browser: Debian's Chromium, headless, driven by playwright-core from npm
(portal/e2e/*.mjs, run with node), against a live stack with the demo data of three cities
seeded and the storylines' demonstration products prepared the way `scripts/run` prepares them.

Screenshots of each main page, at desktop and phone widths, go to var/test-output/portal/; with
CURE_PORTAL_DOCS_SCREENSHOTS=1 the README's are copied into docs/.
"""

import os
import shutil
import subprocess
import time
from datetime import date
from pathlib import Path

import pytest

from cure.demo.rasters import city_by_name
from cure.demo.seed import seed
from cure.demo.showcase import prepare
from cure.kit.resources import Resources
from cure.kit.state import state_of
from tests.conftest import ROOT, running_stack, write_apps_dir

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


@pytest.fixture(scope="module")
def stack(built, seeded, engine, tmp_path_factory):
    # The probe app (it can sleep, to be cancelled) besides the real apps.
    apps = write_apps_dir(
        tmp_path_factory.mktemp("portal-apps"),
        probe_timeout=120,
        also=("suhi", "urban_green", "flood_susceptibility", "air_quality"),
    )
    with running_stack("portal", CURE_APPS_DIR=str(apps)) as live:
        yield live


@pytest.fixture(scope="module")
async def prepared(stack, app, sessionmaker, settings) -> None:
    """The storylines' demonstration products: ordered, run by the stack, published."""
    report = await prepare(
        Resources(settings, state_of(app).db.engine, sessionmaker), timeout_seconds=120
    )
    assert report.ok, report.failed
    assert len(report.published) == 6


def run_scenario(stack, name: str) -> str:
    OUTPUT.mkdir(parents=True, exist_ok=True)
    env = {
        **os.environ,
        "CURE_URL": stack.url,
        "CURE_OUTPUT": str(OUTPUT),
        "CURE_CHROMIUM": CHROMIUM,
    }
    started = time.monotonic()
    done = subprocess.run(
        ["node", f"e2e/{name}.mjs"],
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
    assert f"ok: {name}" in done.stdout
    return output


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
