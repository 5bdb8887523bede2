"""CURE's Python client: ``CureClient`` (blocking) and ``AsyncCureClient`` (asyncio).

from cure_client import CureClient, ClientCredentials, region

with CureClient("http://127.0.0.1:8000", ClientCredentials(CLIENT_ID, CLIENT_SECRET)) as cure:
    order = cure.submit("roi_stats", region.from_bbox("16.3,48.2,16.4,48.3"), "2024-07-15")
    final = cure.wait(order.order_id)
    files = cure.download(final, "results")
"""

from cure_client import region
from cure_client.auth import ClientCredentials, PasswordLogin
from cure_client.client import AsyncCureClient, CureClient
from cure_client.errors import (
    ApiError,
    ChecksumMismatch,
    CureClientError,
    NotLoggedIn,
    NotReady,
    RegionError,
)
from cure_client.models import App, Asset, Order, OrderEvent, OrderPage, Product, Token

__all__ = [
    "ApiError",
    "App",
    "Asset",
    "AsyncCureClient",
    "ChecksumMismatch",
    "ClientCredentials",
    "CureClient",
    "CureClientError",
    "NotLoggedIn",
    "NotReady",
    "Order",
    "OrderEvent",
    "OrderPage",
    "PasswordLogin",
    "Product",
    "RegionError",
    "Token",
    "region",
]
