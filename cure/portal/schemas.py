from datetime import date
from typing import Any

from pydantic import Field

from cure.kit.schemas import BaseSchema, InputSchema


class SessionCreate(InputSchema):
    email: str = Field(min_length=1, max_length=320)
    password: str = Field(min_length=1, max_length=256)


class SessionRead(BaseSchema):
    """An access token for the page's memory; the refresh token went into an HttpOnly cookie."""

    access_token: str
    token_type: str = "Bearer"  # noqa: S105 (a token type, not a secret)
    expires_in: int
    scope: str


class PortalConfigRead(BaseSchema):
    tile_url: str | None = Field(description="XYZ tiles of the base map; none: the tiles are off")
    tile_attribution: str | None = Field(description="To show with the tiles")
    tile_attribution_url: str | None = Field(description="The page the attribution links to")
    basemap_url: str = Field(
        description="CURE's own basemap (GeoJSON for ?bbox=), drawn where the tiles fail or are off"
    )
    basemap_attribution: str
    basemap_attribution_url: str
    client_id: str = Field(description="The first-party public client the portal logs in with")


class PlaceRead(BaseSchema):
    name: str
    bbox: list[float] = Field(description="west, south, east, north (WGS84)")


class AvailableDatesRead(BaseSchema):
    app_id: str
    needs_inputs: bool = Field(description="False: any date will do (the app reads no input)")
    dates: list[date] = Field(description="Days on which every dated input has a product")


class StorylineSummary(BaseSchema):
    slug: str
    title: str
    summary: str
    city: str
    apps: list[str]


class StorylineProductRead(BaseSchema):
    name: str
    app: str
    title: str
    date: date
    region: list[float]
    available: bool = Field(description="False until `cure portal prepare` has published it")
    collection: str
    identifier: str | None = None
    quicklook: str | None = Field(default=None, description="The primary raster's quicklook")
    statistics: dict[str, Any] | None = None


class StorylineRead(StorylineSummary):
    blocks: list[dict[str, Any]]
    products: dict[str, StorylineProductRead]
