"""The scopes a token can carry, and what each allows."""

import re

from cure.apps import registry as app_registry
from cure.config import Settings

ACCOUNT_READ = "account:read"
ACCOUNT_WRITE = "account:write"
ORDERS_READ = "orders:read"
ORDERS_WRITE = "orders:write"
LOGS_WRITE = "logs:write"
ADMIN = "admin"

DESCRIPTIONS = {
    ACCOUNT_READ: "read your profile and OAuth clients",
    ACCOUNT_WRITE: "change your profile, password and OAuth clients",
    ORDERS_READ: "read your orders and their results",
    ORDERS_WRITE: "submit and cancel orders",
    LOGS_WRITE: "write log records",
    ADMIN: "manage customers and their scopes (admins only)",
    "app:<app_id>": "order the app <app_id>",
}

# RFC 6749 section 3.3: scope-token = 1*( %x21 / %x23-5B / %x5D-7E )
_SCOPE_TOKEN = re.compile(r"^[\x21\x23-\x5b\x5d-\x7e]{1,100}$")


def app_scope(app_id: str) -> str:
    return f"app:{app_id}"


def is_well_formed(scope: str) -> bool:
    return bool(_SCOPE_TOKEN.match(scope))


def parse(scope: str | None) -> list[str] | None:
    """The scopes of a space-separated ``scope`` parameter; None when absent or empty."""
    if scope is None or not scope.strip():
        return None
    return sorted(set(scope.split(" ")) - {""})


def known(settings: Settings) -> set[str]:
    """Every scope that can be granted: the fixed ones and one per app (public or not)."""
    apps = {app_scope(app.id) for app in app_registry.get_registry(settings).all()}
    return {ACCOUNT_READ, ACCOUNT_WRITE, ORDERS_READ, ORDERS_WRITE, LOGS_WRITE, ADMIN} | apps


def defaults(settings: Settings) -> list[str]:
    """What a new customer may do: the configured base scopes and every public app."""
    apps = {app_scope(app.id) for app in app_registry.get_registry(settings).public()}
    return sorted({*settings.default_scopes, *apps})
