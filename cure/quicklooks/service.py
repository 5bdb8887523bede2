"""Quicklooks of raster assets in CURE's storage (an order's output, a catalogue product's file):
rendered once in one of the process's few slots (cure.quicklooks.renders), then kept in storage
next to the asset and read from there."""

import asyncio
import json
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cure.quicklooks import styles
from cure.quicklooks.exceptions import NoQuicklook
from cure.quicklooks.renders import Renders
from cure.quicklooks.schemas import QuicklookRead
from cure.storage.service import Storage

RASTER_TYPES = ("image/tiff",)
MAX_RASTER_BYTES = 512 * 1024 * 1024


@dataclass(frozen=True)
class RasterAsset:
    key: str  # the storage key
    style: styles.Style
    size: int | None


def _cache_keys(asset: RasterAsset) -> tuple[str, str]:
    base = f"{asset.key}.quicklook-v{styles.STYLE_VERSION}"
    return f"{base}.json", f"{base}.png"


async def _read_stored(storage: Storage, key: str) -> bytes | None:
    """The object's bytes, or None when storage has no such object (read by its key: one
    request, no listing)."""
    return await storage.read(key)


async def _render(
    storage: Storage, renders: Renders, asset: RasterAsset
) -> tuple[bytes, dict[str, Any]]:
    """Render (once, however many ask at the same time; in one of the process's few slots)."""
    if asset.size is not None and asset.size > MAX_RASTER_BYTES:
        raise NoQuicklook("the raster is too large for a quicklook")
    return await renders.render(_cache_keys(asset)[0], lambda: _draw(storage, asset))


async def _draw(storage: Storage, asset: RasterAsset) -> tuple[bytes, dict[str, Any]]:
    from cure.quicklooks import render  # rasterio: loaded only where a quicklook is drawn

    json_key, png_key = _cache_keys(asset)
    with tempfile.TemporaryDirectory(prefix="cure-quicklook-") as folder:
        source = Path(folder) / "source.tif"
        await storage.get_file(asset.key, source)
        try:
            png, description = await asyncio.to_thread(render.render, source, asset.style)
        except (ValueError, OSError) as exc:  # not a raster rasterio can read, or no CRS
            raise NoQuicklook(f"the asset cannot be drawn: {exc}") from exc
    # The image first: a description in storage means its image is there too.
    await storage.put(png_key, png, media_type="image/png")
    await storage.put(json_key, json.dumps(description).encode(), media_type="application/json")
    return png, description


async def quicklook_description(
    storage: Storage, renders: Renders, asset: RasterAsset
) -> dict[str, Any]:
    """Bounds, range, colormap, histogram and statistics of the asset's quicklook, rendered on
    first use and then read from storage."""
    json_key, _ = _cache_keys(asset)
    cached = await _read_stored(storage, json_key)
    if cached is not None:
        description: dict[str, Any] = json.loads(cached)
        return description
    return (await _render(storage, renders, asset))[1]


async def quicklook_png(storage: Storage, renders: Renders, asset: RasterAsset) -> bytes:
    # The image is stored before its description: with the image there, it is complete.
    cached = await _read_stored(storage, _cache_keys(asset)[1])
    if cached is not None:
        return cached
    return (await _render(storage, renders, asset))[0]


def is_raster(media_type: str | None) -> bool:
    """Whether a file of this media type is a raster a quicklook can draw."""
    return bool(media_type) and media_type.split(";")[0].strip().lower() in RASTER_TYPES  # type: ignore[union-attr]


async def describe(
    storage: Storage, renders: Renders, asset: RasterAsset, *, png: str
) -> QuicklookRead:
    """The quicklook's description as the API answers it, with ``png`` the link to its image."""
    description = await quicklook_description(storage, renders, asset)
    return QuicklookRead.model_validate({**description, "png": png})
