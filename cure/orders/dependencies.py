from typing import Annotated

from fastapi import Depends

from cure.config import Settings, get_settings
from cure.storage.service import Storage, make_storage


def get_storage(settings: Annotated[Settings, Depends(get_settings)]) -> Storage:
    return make_storage(settings)


StorageDep = Annotated[Storage, Depends(get_storage)]
