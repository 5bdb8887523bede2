"""Where the command line keeps its login: one JSON file, readable by its owner only.

``CURE_CLIENT_CONFIG`` names the file; by default ``$XDG_CONFIG_HOME/cure-client/config.json``
(``~/.config/...``). A password is never stored: a password login keeps its refresh token.
"""

import json
import os
from pathlib import Path
from typing import Any

from cure_client.auth import ClientCredentials, Credentials, PasswordLogin

DEFAULT_URL = "http://127.0.0.1:8000"


def config_path() -> Path:
    explicit = os.environ.get("CURE_CLIENT_CONFIG")
    if explicit:
        return Path(explicit)
    home = os.environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return Path(home) / "cure-client" / "config.json"


def load() -> dict[str, Any]:
    path = config_path()
    try:
        data = json.loads(path.read_text())
    except FileNotFoundError:
        return {}
    return data if isinstance(data, dict) else {}


def save(data: dict[str, Any]) -> Path:
    path = config_path()
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    partial = path.with_suffix(".tmp")
    descriptor = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "w") as out:
        json.dump(data, out, indent=2)
    partial.replace(path)
    return path


def credentials_of(data: dict[str, Any]) -> Credentials | None:
    if data.get("client_id") and data.get("client_secret"):
        return ClientCredentials(data["client_id"], data["client_secret"], data.get("scope"))
    if data.get("email") and data.get("refresh_token"):
        return PasswordLogin(
            data["email"],
            refresh_token=data["refresh_token"],
            client_id=data.get("login_client_id") or "cure-portal",
            scope=data.get("scope"),
        )
    return None


def to_data(url: str, credentials: Credentials) -> dict[str, Any]:
    if isinstance(credentials, ClientCredentials):
        data: dict[str, Any] = {
            "url": url,
            "client_id": credentials.client_id,
            "client_secret": credentials.client_secret,
        }
    else:
        data = {
            "url": url,
            "email": credentials.email,
            "refresh_token": credentials.refresh_token,
            "login_client_id": credentials.client_id,
        }
    if credentials.scope:
        data["scope"] = credentials.scope
    return data


def remember_refresh(refresh_token: str) -> None:
    """Store a password login's new refresh token (each use of the old one returns a new one)."""
    data = load()
    if data.get("email"):
        data["refresh_token"] = refresh_token
        save(data)
