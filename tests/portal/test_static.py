"""The built portal at /portal: every file of ours, a content security policy without inline
scripts or styles and without any other origin (unless a base map is configured)."""

import re
from pathlib import Path

import httpx

from cure.config import PortalSettings
from cure.portal.router import content_security_policy
from tests.conftest import loopback_address, started_app


def write_dist(root: Path) -> Path:
    dist = root / "dist"
    (dist / "assets").mkdir(parents=True)
    (dist / "index.html").write_text(
        '<!doctype html><html><head><script type="module" src="/portal/assets/app-1.js">'
        '</script><link rel="stylesheet" href="/portal/assets/app-1.css"></head>'
        '<body><main id="main"></main></body></html>'
    )
    (dist / "assets" / "app-1.js").write_text("console.log('cure')")
    (dist / "assets" / "app-1.css").write_text("body{}")
    (root / "secret.txt").write_text("outside the portal")
    return dist


async def portal_client(settings, dist: Path):  # type: ignore[no-untyped-def]
    async with started_app(settings.model_copy(update={"portal_dir": dist})) as api:
        transport = httpx.ASGITransport(app=api, client=(loopback_address(), 50000))
        async with httpx.AsyncClient(transport=transport, base_url="http://cure.test") as http:
            yield http


async def test_the_page_and_its_assets_are_served_with_a_strict_policy(settings, tmp_path) -> None:
    dist = write_dist(tmp_path)
    async for http in portal_client(settings, dist):
        moved = await http.get("/portal")
        assert moved.status_code == 308 and moved.headers["location"] == "/portal/"
        page = await http.get("/portal/")
        assert page.status_code == 200 and "text/html" in page.headers["content-type"]
        policy = page.headers["content-security-policy"]
        assert "script-src 'self';" in policy and "style-src 'self';" in policy
        assert "unsafe-inline" not in policy and "unsafe-eval" not in policy
        assert "default-src 'none'" in policy and "frame-ancestors 'none'" in policy
        assert page.headers["x-content-type-options"] == "nosniff"
        asset = await http.get("/portal/assets/app-1.js")
        assert asset.status_code == 200 and "javascript" in asset.headers["content-type"]
        assert "immutable" in asset.headers["cache-control"]
        assert (await http.get("/portal/assets/missing.js")).status_code == 404
        escape = await http.get("/portal/..%2Fsecret.txt")
        assert escape.status_code == 404 and "outside" not in escape.text


async def test_an_unbuilt_portal_says_how_to_build_it(settings, tmp_path) -> None:
    async for http in portal_client(settings, tmp_path / "nothing"):
        response = await http.get("/portal/")
        assert response.status_code == 503
        assert "npm run build" in response.json()["detail"]


def test_a_configured_base_map_is_the_only_other_origin(settings) -> None:
    assert "https:" not in content_security_policy(settings)  # the tests switch the tiles off
    default = PortalSettings.model_fields["portal_tile_url"].default
    openstreetmap = settings.model_copy(update={"portal_tile_url": default})
    assert "img-src 'self' blob: data: https://tile.openstreetmap.org;" in (
        content_security_policy(openstreetmap)
    )
    tiles = settings.model_copy(
        update={"portal_tile_url": "https://{s}.tiles.example.org/{z}/{x}/{y}.png"}
    )
    assert "img-src 'self' blob: data: https://*.tiles.example.org;" in content_security_policy(
        tiles
    )


def test_the_built_portal_has_no_inline_script_and_nothing_from_elsewhere() -> None:
    """The real build (made by scripts/test) keeps to the policy: scripts and styles are files."""
    index = Path(__file__).resolve().parents[2] / "portal" / "dist" / "index.html"
    html = index.read_text()
    scripts = re.findall(r"<script\b([^>]*)>(.*?)</script>", html, flags=re.DOTALL)
    assert scripts and all('src="/portal/' in attrs and not body.strip() for attrs, body in scripts)
    assert "<style" not in html and " style=" not in html
    assert not re.search(r"(src|href)=\"(https?:)?//", html)
