from typing import Annotated

from fastapi import Depends, Request

from cure.logs.publisher import LogPublisher


async def get_publisher(request: Request) -> LogPublisher:
    publisher: LogPublisher = request.app.state.log_publisher
    return publisher


PublisherDep = Annotated[LogPublisher, Depends(get_publisher)]
