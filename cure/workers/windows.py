"""Reading the order's window of a remote Cloud-Optimized GeoTIFF: only the bytes the region
needs, through range requests, into a small GeoTIFF with the same georeferencing.

GDAL reads the remote file through a Python file object (rasterio's ``opener``): each read it
makes becomes a range request of the source's ``Transfers`` on the event loop, so the
outbound-network guard, the source's credentials, its retries and its limit on parallel
transfers apply to every byte. The window is the region's bounds in the raster's CRS plus a
margin of a few pixels, at full resolution.
"""

import asyncio
import concurrent.futures
import math
import threading
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import numpy
import rasterio
from rasterio.abc import MultiByteRangeResourceContainer
from rasterio.warp import transform_bounds
from rasterio.windows import Window, from_bounds

from cure.workers.remote import TransferError, TransferRefused, Transfers, where

MARGIN_PIXELS = 4  # beyond the region on each side: room for resampling at its edges
FIRST_READ = 64 * 1024  # the header and the image directories of a COG, in one request
SMALL_READ = 16 * 1024  # the least a read of GDAL's (outside the tiles) asks the source for
_COG_TYPES = {"image/tiff", "image/geotiff", "image/vnd.stac.geotiff"}

Bounds = tuple[float, float, float, float]  # west, south, east, north


def is_cloud_optimized(asset: dict[str, Any]) -> bool:
    """A Cloud-Optimized GeoTIFF, read by window: its media type says so, or it is a .tif whose
    catalogue gives no checksum (a checksum is of the whole file, which a window is not)."""
    media_type, *parameters = (p.strip().lower() for p in str(asset.get("type") or "").split(";"))
    if media_type in _COG_TYPES and any(
        p.replace(" ", "") == "profile=cloud-optimized" for p in parameters
    ):
        return True
    path = urlsplit(str(asset.get("href") or "")).path.lower()
    return path.endswith((".tif", ".tiff")) and not asset.get("checksum")


@dataclass(frozen=True)
class Cut:
    """What was written: the window of the source raster and the staged file's band values."""

    window: tuple[int, int, int, int]  # column, row, width, height in the source raster
    source_size: tuple[int, int]  # the source raster's width and height
    scale: float | None
    offset: float | None
    nodata: float | None


# -- the file object GDAL reads -------------------------------------------------------------


class _Stopped(Exception):
    pass


class _Remote:
    """The remote file's bytes for GDAL's thread, fetched on the event loop. Small reads (the
    header, image directories) are kept; tiles come through ``get_byte_ranges`` and are not."""

    def __init__(
        self,
        *,
        size: int,
        fetch: Callable[[list[tuple[int, int]]], list[bytes]],
        first: bytes,
    ) -> None:
        self.size = size
        self._fetch = fetch
        self._kept: list[tuple[int, bytes]] = [(0, first)]
        self._lock = threading.Lock()
        self.failure: BaseException | None = None

    def fetch(self, ranges: list[tuple[int, int]]) -> list[bytes]:
        """The bytes of each range: from what is kept when it holds them, the rest fetched."""
        found: list[bytes | None] = [self._held(start, length) for start, length in ranges]
        missing = [index for index, data in enumerate(found) if data is None]
        if missing:
            for index, data in zip(missing, self._get([ranges[i] for i in missing]), strict=True):
                found[index] = data
        return [data or b"" for data in found]

    def read(self, start: int, length: int) -> bytes:
        length = max(0, min(length, self.size - start))
        if length == 0:
            return b""
        held = self._held(start, length)
        if held is not None:
            return held
        wanted = min(max(length, SMALL_READ), self.size - start)
        data = self._get([(start, wanted)])[0]
        with self._lock:
            self._kept.append((start, data))
        return data[:length]

    def _held(self, start: int, length: int) -> bytes | None:
        with self._lock:
            for begin, data in self._kept:
                if begin <= start and start + length <= begin + len(data):
                    return data[start - begin : start - begin + length]
        return None

    def _get(self, ranges: list[tuple[int, int]]) -> list[bytes]:
        if self.failure is not None:
            raise OSError("the remote file failed already")
        try:
            return self._fetch(ranges)
        except BaseException as exc:
            self.failure = self.failure or exc
            raise OSError(str(exc)) from exc


class _File:
    """A read-only Python file over a ``_Remote``, as GDAL's opener wants one."""

    def __init__(self, remote: _Remote) -> None:
        self._remote = remote
        self._position = 0
        self.closed = False

    def read(self, size: int = -1) -> bytes:
        if size is None or size < 0:
            size = self._remote.size - self._position
        data = self._remote.read(self._position, size)
        self._position += len(data)
        return data

    def get_byte_ranges(self, offsets: list[int], sizes: list[int]) -> list[bytes]:
        ranges = [
            (offset, max(0, min(size, self._remote.size - offset)))
            for offset, size in zip(offsets, sizes, strict=True)
        ]
        data = self._remote.fetch(ranges)
        if ranges:
            self._position = ranges[-1][0] + len(data[-1])
        return data

    def seek(self, offset: int, whence: int = 0) -> int:
        base = {0: 0, 1: self._position, 2: self._remote.size}[whence]
        self._position = max(0, base + offset)
        return self._position

    def tell(self) -> int:
        return self._position

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def close(self) -> None:
        self.closed = True

    def __enter__(self) -> "_File":
        return self

    def __exit__(self, *_: object) -> None:
        self.close()


class _Opener:
    """One remote file under one made-up path: GDAL's probes for side-car files (.aux.xml, .ovr,
    .msk) find nothing and cost no request."""

    def __init__(self, path: str, remote: _Remote) -> None:
        self.path = path
        self.remote = remote

    def open(self, path: str, mode: str = "rb", **_: Any) -> _File:
        if path != self.path or "w" in mode or "+" in mode:
            raise FileNotFoundError(path)
        return _File(self.remote)

    def isfile(self, path: str) -> bool:
        return path == self.path

    def isdir(self, path: str) -> bool:
        return False

    def ls(self, path: str) -> list[str]:
        return []

    def mtime(self, path: str) -> int:
        return 0

    def size(self, path: str) -> int:
        return self.remote.size if path == self.path else 0

    def rm(self, path: str) -> None:
        raise PermissionError(path)


MultiByteRangeResourceContainer.register(_Opener)


# -- the window -------------------------------------------------------------------------------


def region_window(
    dataset: Any, bounds: Bounds, *, margin: int = MARGIN_PIXELS
) -> tuple[int, int, int, int] | None:
    """The region's window in the raster, whole pixels, ``margin`` pixels wider on each side and
    clipped to the raster; None when the region misses it."""
    if dataset.crs is None:
        raise TransferRefused("the raster has no CRS, so the region cannot be found in it")
    west, south, east, north = transform_bounds("EPSG:4326", dataset.crs, *bounds, densify_pts=21)
    window = from_bounds(west, south, east, north, transform=dataset.transform)
    first_col = math.floor(min(window.col_off, window.col_off + window.width)) - margin
    first_row = math.floor(min(window.row_off, window.row_off + window.height)) - margin
    last_col = math.ceil(max(window.col_off, window.col_off + window.width)) + margin
    last_row = math.ceil(max(window.row_off, window.row_off + window.height)) + margin
    first_col, first_row = max(first_col, 0), max(first_row, 0)
    last_col, last_row = min(last_col, dataset.width), min(last_row, dataset.height)
    if last_col <= first_col or last_row <= first_row:
        return None
    return first_col, first_row, last_col - first_col, last_row - first_row


def _band_values(
    dataset: Any, asset: dict[str, Any]
) -> tuple[float | None, float | None, float | None]:
    """Scale, offset and nodata: the catalogue's, else the raster's own (None when neither)."""
    own_scale, own_offset = dataset.scales[0], dataset.offsets[0]
    described = own_scale != 1 or own_offset != 0
    scale = asset.get("scale")
    offset = asset.get("offset")
    if scale is None and offset is None and described:
        scale, offset = own_scale, own_offset
    nodata = asset.get("nodata")
    if nodata is None:
        nodata = dataset.nodata
    return (
        float(scale) if scale is not None else None,
        float(offset) if offset is not None else None,
        float(nodata) if nodata is not None else None,
    )


def _cut(
    opener: _Opener, *, bounds: Bounds, into: Path, asset: dict[str, Any], max_bytes: int
) -> Cut:
    """Read the region's window (in GDAL's thread) and write it to ``into`` as a GeoTIFF."""
    with (
        rasterio.Env(GDAL_DISABLE_READDIR_ON_OPEN="EMPTY_DIR"),
        rasterio.open(opener.path, opener=opener) as source,
    ):
        found = region_window(source, bounds)
        if found is None:
            raise TransferRefused(
                f"{where(str(asset.get('href')))} does not cover the order's region"
            )
        col, row, width, height = found
        itemsize = numpy.dtype(source.dtypes[0]).itemsize
        if width * height * source.count * itemsize > max_bytes:
            raise TransferRefused(
                f"the order's window of {where(str(asset.get('href')))} "
                f"({width}x{height} pixels) is larger than the input cache"
            )
        window = Window(col, row, width, height)
        data = source.read(window=window)
        scale, offset, nodata = _band_values(source, asset)
        profile = {
            "driver": "GTiff",
            "width": width,
            "height": height,
            "count": source.count,
            "dtype": source.dtypes[0],
            "crs": source.crs,
            "transform": source.window_transform(window),
            "nodata": nodata,
            "compress": "deflate",
        }
        if width >= 256 and height >= 256:
            profile.update(tiled=True, blockxsize=256, blockysize=256)
        with rasterio.open(into, "w", **profile) as staged:
            staged.write(data)
            staged.update_tags(**source.tags())
            for band in range(1, source.count + 1):
                description = source.descriptions[band - 1]
                if description:
                    staged.set_band_description(band, description)
                staged.update_tags(band, **source.tags(band))
                if scale is not None or offset is not None:
                    staged.update_tags(band, scale=scale or 1.0, offset=offset or 0.0)
            if scale is not None or offset is not None:
                staged.scales = [scale if scale is not None else 1.0] * source.count
                staged.offsets = [offset if offset is not None else 0.0] * source.count
        return Cut(
            window=found,
            source_size=(source.width, source.height),
            scale=scale,
            offset=offset,
            nodata=nodata,
        )


async def cut_window(
    transfers: Transfers,
    href: str,
    *,
    size: int | None,
    bounds: Bounds,
    into: Path,
    asset: dict[str, Any],
    what: str,
    max_bytes: int,
) -> Cut:
    """Stage the region's window of the remote COG at ``href`` into ``into``.

    GDAL runs in a thread; its reads wait on range requests made on this event loop. Should
    this task be cancelled, the reads still pending are cancelled and the thread ends at its
    next read."""
    loop = asyncio.get_running_loop()
    pending: set[concurrent.futures.Future[list[bytes]]] = set()
    stopped = threading.Event()

    def fetch(ranges: list[tuple[int, int]]) -> list[bytes]:
        if stopped.is_set():
            raise _Stopped("the stage was stopped")
        future = asyncio.run_coroutine_threadsafe(transfers.read_ranges(href, ranges, what), loop)
        pending.add(future)
        try:
            return future.result()
        finally:
            pending.discard(future)

    first = await transfers.read_range(href, 0, FIRST_READ, what)
    size = size or transfers.sizes.get(href) or (len(first) if len(first) < FIRST_READ else None)
    if size is None:
        raise TransferRefused(f"{where(href)} does not say its size, which reading a window needs")
    remote = _Remote(size=size, fetch=fetch, first=first)
    opener = _Opener(f"cure-{uuid.uuid4().hex}/{_name(href)}", remote)
    job = loop.run_in_executor(
        None,
        lambda: _cut(opener, bounds=bounds, into=into, asset=asset, max_bytes=max_bytes),
    )
    try:
        return await asyncio.shield(job)
    except asyncio.CancelledError:
        stopped.set()
        for future in list(pending):
            future.cancel()
        await asyncio.wait([job])
        raise
    except rasterio.errors.RasterioError as exc:
        if isinstance(remote.failure, TransferError):
            raise remote.failure from None
        raise TransferRefused(
            f"{where(href)} could not be read as a GeoTIFF: {str(exc)[:200]}"
        ) from exc
    except OSError:
        if isinstance(remote.failure, TransferError):
            raise remote.failure from None
        raise


def _name(href: str) -> str:
    name = urlsplit(href).path.rsplit("/", 1)[-1]
    cleaned = "".join(c if c.isalnum() or c in "-_." else "_" for c in name)[-80:]
    return cleaned if cleaned.lower().endswith((".tif", ".tiff")) else f"{cleaned or 'asset'}.tif"
