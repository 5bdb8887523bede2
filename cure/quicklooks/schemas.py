from typing import Any

from pydantic import Field

from cure.kit.schemas import BaseSchema

# What the quicklook image's routes answer besides their errors (their OpenAPI ``responses``).
PNG_RESPONSE: dict[int | str, dict[str, object]] = {
    200: {"content": {"image/png": {}}, "description": "The quicklook image"}
}


class QuicklookRead(BaseSchema):
    png: str = Field(description="GET this (with the same authorization) for the image")
    bounds: list[float] = Field(description="west, south, east, north (WGS84) of the image")
    width: int
    height: int
    label: str
    unit: str | None
    range: list[float] = Field(description="The values at the colormap's two ends")
    colormap: dict[str, Any]
    histogram: dict[str, list[float]] = Field(description="edges (n + 1) and counts (n)")
    statistics: dict[str, float | int | None]
