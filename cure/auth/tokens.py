"""Signed JWT access tokens."""

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

from jose import JWTError, jwt

from cure.config import Settings


class TokenInvalid(Exception):
    pass


def encode_access_token(
    settings: Settings, *, subject: str, client_id: str, scopes: list[str]
) -> tuple[str, int]:
    now = datetime.now(UTC)
    ttl = settings.access_token_ttl_seconds
    claims = {
        "sub": subject,
        "client_id": client_id,
        "scope": " ".join(scopes),
        "iat": int(now.timestamp()),
        "exp": int((now + timedelta(seconds=ttl)).timestamp()),
        "jti": uuid.uuid4().hex,
        "iss": settings.jwt_issuer,
        "aud": settings.jwt_audience,
    }
    return jwt.encode(claims, settings.jwt_secret, algorithm=settings.jwt_algorithm), ttl


def decode_access_token(settings: Settings, token: str) -> dict[str, Any]:
    """Verify signature (only the configured algorithm), expiry, issuer and audience."""
    try:
        claims = jwt.decode(
            token,
            settings.jwt_secret,
            algorithms=[settings.jwt_algorithm],
            audience=settings.jwt_audience,
            issuer=settings.jwt_issuer,
            options={
                "require_exp": True,
                "require_iat": True,
                "require_sub": True,
                "require_jti": True,
                "require_aud": True,
                "require_iss": True,
            },
        )
    except JWTError as exc:
        raise TokenInvalid(str(exc)) from exc
    if not isinstance(claims.get("scope", ""), str) or not isinstance(claims.get("client_id"), str):
        raise TokenInvalid("malformed claims")
    return claims
