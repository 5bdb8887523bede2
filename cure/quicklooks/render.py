"""Quicklooks: a raster asset drawn as a PNG with a colormap, warped to Web Mercator so a web map
lays it over its bounds (WGS84) exactly, with what a legend and a histogram need.

Pure functions on files (numpy and rasterio), run in a thread by the service.
"""

import math
import struct
import zlib
from pathlib import Path
from typing import Any

import numpy as np
import rasterio
from affine import Affine
from rasterio.enums import Resampling
from rasterio.transform import array_bounds
from rasterio.warp import calculate_default_transform, reproject, transform_bounds

from cure.quicklooks.styles import COLORMAPS, Style

WEB_MERCATOR = "EPSG:3857"
WGS84 = "EPSG:4326"
MAX_SIDE = 1024  # pixels on the quicklook's longer side
HISTOGRAM_BINS = 24


def _value_range(values: np.ndarray, style: Style) -> tuple[float, float]:
    if style.fixed is not None:
        return style.fixed
    if values.size == 0:
        return (0.0, 1.0)
    low, high = (float(v) for v in np.percentile(values, [2, 98]))
    if style.symmetric:
        reach = max(abs(low), abs(high)) or 1.0
        return (-reach, reach)
    if high <= low:
        return (low - 0.5, high + 0.5)
    return (low, high)


def _colorize(data: np.ndarray, low: float, high: float, colormap: str) -> np.ndarray:
    """RGBA pixels: the colormap over [low, high]; NaN is transparent."""
    stops = COLORMAPS[colormap]
    positions = [p for p, _ in stops]
    valid = np.isfinite(data)
    scaled = np.clip((np.where(valid, data, low) - low) / (high - low), 0.0, 1.0)
    rgba = np.zeros((*data.shape, 4), dtype=np.uint8)
    for channel in range(3):
        rgba[..., channel] = np.interp(scaled, positions, [c[channel] for _, c in stops]).astype(
            np.uint8
        )
    rgba[..., 3] = np.where(valid, 255, 0)
    return rgba


def encode_png(rgba: np.ndarray) -> bytes:
    """An 8-bit RGBA PNG, written by hand: nothing beyond zlib is needed. Rows are stored
    unfiltered, which compresses noisy satellite maps better than PNG's row filters do."""
    height, width, _ = rgba.shape
    rows = rgba.reshape(height, width * 4)
    raw = np.hstack([np.zeros((height, 1), dtype=np.uint8), rows]).tobytes()

    def chunk(kind: bytes, body: bytes) -> bytes:
        return (
            struct.pack(">I", len(body))
            + kind
            + body
            + struct.pack(">I", zlib.crc32(kind + body) & 0xFFFFFFFF)
        )

    header = struct.pack(">IIBBBBB", width, height, 8, 6, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(raw, 6))
        + chunk(b"IEND", b"")
    )


def _scaled(transform: Affine, x: float, y: float) -> Affine:
    """The transform of the same extent in pixels ``x`` and ``y`` times as large (written out:
    affine's own product operator is being deprecated)."""
    t = transform
    return Affine(t.a * x, t.b * y, t.c, t.d * x, t.e * y, t.f)


def _read_band(path: Path) -> tuple[np.ndarray, Any, Any]:
    """The first band as float32 with NaN for no data (from overviews when it is large), its
    transform and CRS."""
    with rasterio.open(path) as source:
        if source.crs is None:
            raise ValueError("the raster has no coordinate reference system")
        factor = max(1, math.ceil(max(source.width, source.height) / (2 * MAX_SIDE)))
        shape = (max(1, source.height // factor), max(1, source.width // factor))
        band = source.read(1, out_shape=shape, masked=True, resampling=Resampling.nearest)
        transform = _scaled(source.transform, source.width / shape[1], source.height / shape[0])
        data = band.astype(np.float32).filled(np.nan)
        data[~np.isfinite(data)] = np.nan
        return data, transform, source.crs


def render(path: Path, style: Style) -> tuple[bytes, dict[str, Any]]:
    """The PNG and its description: WGS84 bounds, value range, colormap stops, histogram and
    summary statistics of the valid pixels."""
    data, transform, crs = _read_band(path)
    height, width = data.shape
    bounds = array_bounds(height, width, transform)
    target, out_width, out_height = calculate_default_transform(
        crs, WEB_MERCATOR, width, height, *bounds
    )
    assert out_width is not None and out_height is not None
    shrink = max(1.0, max(out_width, out_height) / MAX_SIDE)
    out_width, out_height = max(1, round(out_width / shrink)), max(1, round(out_height / shrink))
    target = _scaled(target, shrink, shrink)
    warped = np.full((out_height, out_width), np.nan, dtype=np.float32)
    reproject(
        source=data,
        destination=warped,
        src_transform=transform,
        src_crs=crs,
        src_nodata=np.nan,
        dst_transform=target,
        dst_crs=WEB_MERCATOR,
        dst_nodata=np.nan,
        resampling=Resampling.nearest,
    )
    west, south, east, north = transform_bounds(
        WEB_MERCATOR, WGS84, *array_bounds(out_height, out_width, target)
    )

    values = data[np.isfinite(data)]
    low, high = _value_range(values, style)
    counts, edges = np.histogram(np.clip(values, low, high), bins=HISTOGRAM_BINS, range=(low, high))
    png = encode_png(_colorize(warped, low, high, style.colormap))
    description: dict[str, Any] = {
        "bounds": [round(v, 7) for v in (west, south, east, north)],
        "width": out_width,
        "height": out_height,
        "label": style.label,
        "unit": style.unit,
        "range": [low, high],
        "colormap": {
            "name": style.colormap,
            "stops": [
                {"at": at, "color": "#{:02x}{:02x}{:02x}".format(*rgb)}
                for at, rgb in COLORMAPS[style.colormap]
            ],
        },
        "histogram": {"edges": [float(e) for e in edges], "counts": [int(c) for c in counts]},
        "statistics": {
            "count": int(values.size),
            "min": float(values.min()) if values.size else None,
            "max": float(values.max()) if values.size else None,
            "mean": float(values.mean()) if values.size else None,
        },
    }
    return png, description
