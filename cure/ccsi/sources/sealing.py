"""A source document's secrets, kept apart: the document is stored without them, they are stored
encrypted together, and answers show only that they are set.

The inline secrets of a document are its ``SecretStr`` values (today all under ``auth``: an
OAuth2 client secret, refresh token or password, S3 keys). They are sealed with Fernet
(AES-128-CBC with HMAC-SHA256) under a key derived from ``CURE_SOURCES_KEY`` by HKDF-SHA256, in a
token that also names the source, so a sealed value copied into another source's row is refused.
Without ``CURE_SOURCES_KEY`` (possible in production only) no inline secret can be stored or
read; secrets named by ``*_env`` need no key.
"""

import base64
import json
from dataclasses import dataclass
from typing import Any

from cryptography.fernet import Fernet, InvalidToken
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from pydantic import SecretStr

from cure.ccsi.sources.exceptions import SecretsUnreadable, SecretsUnstorable
from cure.ccsi.sources.schemas import SourceDocument
from cure.config import Settings

MASK = "**********"  # what an answer shows for a secret that is set (never the secret)
_KEY_INFO = b"cure catalogue sources v1"
# What is never stored in the document column: enabled is a column of its own.
_NOT_STORED = frozenset({"enabled"})


def cipher(settings: Settings) -> Fernet | None:
    """The Fernet of this deployment's source secrets, or None without ``CURE_SOURCES_KEY``."""
    if settings.sources_key is None:
        return None
    derived = HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=_KEY_INFO).derive(
        settings.sources_key.get_secret_value().encode()
    )
    return Fernet(base64.urlsafe_b64encode(derived))


@dataclass(frozen=True)
class Split:
    """A document taken apart for storage: ``public`` is its JSON without ``enabled``, each inline
    secret that is set replaced by ``MASK``; ``secrets`` holds those secrets by their field."""

    public: dict[str, Any]
    secrets: dict[str, str]

    def __repr__(self) -> str:
        return f"Split(public={self.public!r}, secrets={sorted(self.secrets)})"


def secret_fields(document: SourceDocument) -> dict[str, SecretStr]:
    """The document's inline secrets that are set, by their field under ``auth``."""
    auth = document.auth
    found = {name: getattr(auth, name) for name in type(auth).model_fields}
    return {name: value for name, value in found.items() if isinstance(value, SecretStr)}


def split(document: SourceDocument) -> Split:
    secrets = {name: value.get_secret_value() for name, value in secret_fields(document).items()}
    public = document.model_dump(mode="json", exclude=set(_NOT_STORED))
    public["auth"] = {**public["auth"], **dict.fromkeys(secrets, MASK)}
    return Split(public=public, secrets=secrets)


def masked_fields(document: SourceDocument) -> list[str]:
    """The document's inline secrets given as ``MASK`` (an answer's marker sent back)."""
    return sorted(
        name for name, value in secret_fields(document).items() if value.get_secret_value() == MASK
    )


def seal(settings: Settings, name: str, secrets: dict[str, str]) -> str | None:
    """The secrets encrypted for the source ``name``; None when there are none."""
    if not secrets:
        return None
    fernet = cipher(settings)
    if fernet is None:
        raise SecretsUnstorable(
            "CURE_SOURCES_KEY is not set, so inline secrets cannot be stored: set it, or name "
            "environment variables that hold them (client_secret_env, refresh_token_env, "
            "password_env, access_key_id_env, secret_access_key_env)"
        )
    payload = json.dumps({"source": name, "secrets": secrets}, separators=(",", ":"))
    return fernet.encrypt(payload.encode()).decode("ascii")


def unseal(settings: Settings, name: str, sealed: str | None) -> dict[str, str]:
    """The secrets sealed for the source ``name``."""
    if sealed is None:
        return {}
    fernet = cipher(settings)
    if fernet is None:
        raise SecretsUnreadable(
            f"the secrets of the source {name} cannot be read: CURE_SOURCES_KEY is not set"
        )
    try:
        payload = json.loads(fernet.decrypt(sealed.encode("ascii")))
    except (InvalidToken, ValueError):
        raise SecretsUnreadable(
            f"the secrets of the source {name} cannot be read with this CURE_SOURCES_KEY "
            "(was the key changed? add the source again with its secrets)"
        ) from None
    if not isinstance(payload, dict) or payload.get("source") != name:
        raise SecretsUnreadable(f"the sealed secrets stored for the source {name} are not its own")
    secrets = payload.get("secrets")
    if not isinstance(secrets, dict) or not all(isinstance(v, str) for v in secrets.values()):
        raise SecretsUnreadable(f"the sealed secrets of the source {name} are malformed")
    return secrets


def join(public: dict[str, Any], secrets: dict[str, str], *, enabled: bool) -> SourceDocument:
    """The whole document again, each ``MASK`` replaced by its secret (as ``SecretStr``)."""
    auth = dict(public.get("auth") or {})
    for name, value in auth.items():
        if value == MASK:
            if name not in secrets:
                raise SecretsUnreadable(f"the stored secret auth.{name} is missing")
            auth[name] = secrets[name]
    return SourceDocument.model_validate({**public, "enabled": enabled, "auth": auth})


def masked(public: dict[str, Any], *, enabled: bool) -> dict[str, Any]:
    """The document as answers show it: every stored secret is ``MASK``, never its value."""
    return {**public, "enabled": enabled}
