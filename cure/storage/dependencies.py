from typing import Annotated

from fastapi import Depends, Request

from cure.storage.service import Storage


async def get_storage(request: Request) -> Storage:
    """The app's storage client, made once in its lifespan (see ``create_app``)."""
    storage: Storage = request.app.state.storage
    return storage


StorageDep = Annotated[Storage, Depends(get_storage)]
