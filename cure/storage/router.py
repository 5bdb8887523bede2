from typing import Annotated

from fastapi import APIRouter, Query
from fastapi.responses import FileResponse

from cure.kit.dependencies import SettingsDep
from cure.kit.errors import NotFound
from cure.kit.schemas import error_responses
from cure.storage.exceptions import LinkInvalid
from cure.storage.service import LocalStorage

router = APIRouter(prefix="/v1/storage", tags=["storage"])


@router.get("/{key:path}", responses=error_responses(403, 404), response_class=FileResponse)
async def download(
    key: str,
    settings: SettingsDep,
    expires: Annotated[int, Query()],
    signature: Annotated[str, Query(max_length=100)],
) -> FileResponse:
    """Serve a stored object through a signed, expiring link (local storage backend only)."""
    if settings.storage_backend != "local":
        raise NotFound("objects are served by the S3 service")
    storage = LocalStorage(settings)
    if not storage.verify(key, expires, signature):
        raise LinkInvalid("the link is invalid or has expired")
    try:
        path = storage.path_of(key)
    except ValueError as exc:
        raise LinkInvalid("the link is invalid") from exc
    if not path.is_file():
        raise NotFound("no such object")
    return FileResponse(path, media_type=storage.media_type(key), filename=path.name)
