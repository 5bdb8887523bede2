from typing import Annotated

from fastapi import Depends

from cure.kit.dependencies import SettingsDep
from cure.storage.service import Storage, make_storage


def get_storage(settings: SettingsDep) -> Storage:
    return make_storage(settings)


StorageDep = Annotated[Storage, Depends(get_storage)]
