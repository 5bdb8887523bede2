"""The Docker build context of an app: its folder plus the shared app code (cure/apps/_shared/).

Apps share helpers (rasterkit.py) without copies in each folder: the context is a tar with the
app's files and every file of _shared at its root, for the Docker SDK's
``images.build(fileobj=io.BytesIO(context), custom_context=True, ...)``.
"""

import io
import tarfile
from pathlib import Path

SHARED_DIRECTORY = Path(__file__).resolve().parent / "_shared"
_SKIPPED_DIRECTORIES = {"__pycache__", ".mypy_cache", ".ruff_cache", ".pytest_cache"}


def build_context(app_directory: Path, *, shared_directory: Path = SHARED_DIRECTORY) -> bytes:
    """An uncompressed tar of the app's folder with the shared files at its root.

    Entries are sorted with fixed owners and times, so the same files give the same bytes. A
    shared file with the name of one of the app's own is an error, not a silent override.
    """
    if not (app_directory / "Dockerfile").is_file():
        raise FileNotFoundError(f"{app_directory} has no Dockerfile")
    files = {path.relative_to(app_directory).as_posix(): path for path in _files(app_directory)}
    for path in _files(shared_directory):
        name = path.relative_to(shared_directory).as_posix()
        if name in files:
            raise ValueError(f"{app_directory.name}/{name} clashes with the shared {name}")
        files[name] = path

    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for name in sorted(files):
            data = files[name].read_bytes()
            info = tarfile.TarInfo(name)
            info.size = len(data)
            info.mode = 0o755 if files[name].stat().st_mode & 0o111 else 0o644
            info.mtime = 0
            info.uid = info.gid = 0
            info.uname = info.gname = "root"
            tar.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


def _files(directory: Path) -> list[Path]:
    """Every regular file under directory, caches and compiled Python left out."""
    if not directory.is_dir():
        return []
    return sorted(
        path
        for path in directory.rglob("*")
        if path.is_file()
        and path.suffix != ".pyc"
        and not _SKIPPED_DIRECTORIES.intersection(path.relative_to(directory).parts)
    )
