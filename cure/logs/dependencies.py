from typing import Annotated

from fastapi import Depends, Request

from cure.kit.state import StateKey, state_of
from cure.logs.publisher import LogPublisher
from cure.logs.waiters import OrderLogWaiters

LOG_PUBLISHER = StateKey[LogPublisher]("log publisher")
LOG_WAITERS = StateKey[OrderLogWaiters]("order-log waiters")


async def get_publisher(request: Request) -> LogPublisher:
    return state_of(request.app).need(LOG_PUBLISHER)


async def get_log_waiters(request: Request) -> OrderLogWaiters:
    return state_of(request.app).need(LOG_WAITERS)


PublisherDep = Annotated[LogPublisher, Depends(get_publisher)]
WaitersDep = Annotated[OrderLogWaiters, Depends(get_log_waiters)]
