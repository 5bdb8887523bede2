"""Typed views of the API's answers. Unknown fields are kept, so a newer API breaks nothing."""

from datetime import date, datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

FINAL_STATES = frozenset({"SUCCESS", "FAILED", "INVALID", "CANCELLED"})


class Model(BaseModel):
    model_config = ConfigDict(extra="allow")


class Token(Model):
    access_token: str
    token_type: str = "Bearer"  # noqa: S105 (a token type)
    expires_in: int
    scope: str = ""
    refresh_token: str | None = None


class AppInput(Model):
    role: str
    collection: str
    product_type: str | None = None


class AppOutput(Model):
    role: str
    path: str
    media_type: str
    primary: bool = False
    title: str | None = None


class App(Model):
    id: str
    title: str
    description: str
    version: str
    inputs: list[AppInput] = Field(default_factory=list)
    outputs: list[AppOutput] = Field(default_factory=list)
    parameters: dict[str, Any] = Field(default_factory=dict)


class Asset(Model):
    role: str
    href: str
    size: int
    media_type: str
    checksum: str
    title: str | None = None
    primary: bool = False


class OrderEvent(Model):
    status: str
    at: datetime
    actor: str
    message: str | None = None
    progress: int | None = None
    attempt: int = 1


class Order(Model):
    order_id: str
    app_id: str
    app_version: str
    status: str
    message: str | None = None
    progress: int | None = None
    attempt: int = 1
    start_date: date
    end_date: date
    created_at: datetime
    updated_at: datetime
    params: dict[str, Any] = Field(default_factory=dict)
    roi: dict[str, Any] | None = None
    history: list[OrderEvent] = Field(default_factory=list)
    assets: list[Asset] = Field(default_factory=list)

    @property
    def is_final(self) -> bool:
        return self.status in FINAL_STATES


class OrderPage(Model):
    items: list[Order]
    next_cursor: str | None = None


class ProductAsset(Model):
    href: str
    type: str
    size: int | None = None
    checksum: str | None = None
    roles: list[str] = Field(default_factory=list)
    title: str | None = None


class Product(Model):
    """A catalogue product (a CCSI search result)."""

    id: str
    collection: str
    identifier: str
    product_type: str
    start: datetime
    end: datetime
    geometry: dict[str, Any] | None = None
    properties: dict[str, Any] = Field(default_factory=dict)
    assets: dict[str, ProductAsset] = Field(default_factory=dict)

    @classmethod
    def from_feature(cls, feature: dict[str, Any]) -> "Product":
        properties = dict(feature.get("properties") or {})
        return cls(
            id=str(feature.get("id")),
            collection=properties.pop("collection"),
            identifier=properties.pop("identifier"),
            product_type=properties.pop("productType"),
            start=properties.pop("start"),
            end=properties.pop("end"),
            geometry=feature.get("geometry"),
            assets=properties.pop("assets", {}),
            properties=properties,
        )
