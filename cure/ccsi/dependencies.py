from typing import Annotated

from fastapi import Depends, Request

from cure.ccsi.schemas import SearchQuery
from cure.kit.dependencies import SettingsDep
from cure.storage.service import Storage, make_storage


def get_storage(settings: SettingsDep) -> Storage:
    return make_storage(settings)


def search_query(request: Request) -> SearchQuery:
    """The OpenSearch parameters, checked here so a bad one is a 400 that names it (not a 422)."""
    collection = request.path_params.get("collection")
    return SearchQuery.parse(request.query_params.multi_items(), collection=collection)


StorageDep = Annotated[Storage, Depends(get_storage)]
SearchQueryDep = Annotated[SearchQuery, Depends(search_query)]
