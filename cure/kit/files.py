"""Files on disk: checksums computed while reading, never the whole file in memory."""

import hashlib
from pathlib import Path

CHUNK = 1 << 20


def size_and_sha256(path: Path) -> tuple[int, str]:
    """The file's size and checksum as ``sha256:<hex>`` (the form CURE records everywhere)."""
    digest = hashlib.sha256()
    size = 0
    with path.open("rb") as source:
        while chunk := source.read(CHUNK):
            digest.update(chunk)
            size += len(chunk)
    return size, f"sha256:{digest.hexdigest()}"
