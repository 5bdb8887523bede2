from typing import Annotated

from fastapi import Depends, Request

from cure.kit.state import StateKey, state_of
from cure.storage.service import Storage

STORAGE = StateKey[Storage]("storage")


async def get_storage(request: Request) -> Storage:
    """The app's storage client, made once in its lifespan (see ``create_app``)."""
    return state_of(request.app).need(STORAGE)


StorageDep = Annotated[Storage, Depends(get_storage)]
