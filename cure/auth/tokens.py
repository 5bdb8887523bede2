"""Signed JWT access tokens (RFC 9068 profile): HS* with a shared secret or RS* with an RSA key."""

import base64
import binascii
import hashlib
import json
import re
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import lru_cache
from typing import Any

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from jose import JWTError, jwt

from cure.config import AuthSettings, reveal

TOKEN_TYPE = "at+jwt"  # noqa: S105 (RFC 9068's media type, not a secret)
MAX_TOKEN_LENGTH = 8192
_BASE64URL = re.compile(r"[A-Za-z0-9_-]+")


class TokenInvalid(Exception):
    pass


@dataclass(frozen=True)
class TokenKey:
    """What one access token is, whatever the text it came as: its jti and a digest of its
    decoded bytes (header, claims and signature)."""

    jti: str
    digest: bytes


def _segment_bytes(segment: str) -> bytes:
    """The bytes of one segment, which must be exactly their unpadded base64url: no padding, no
    other character, no spare bit set in the last character (lenient decoders take all of those,
    so one token would otherwise have many spellings)."""
    if not _BASE64URL.fullmatch(segment):
        raise TokenInvalid("a segment is not unpadded base64url")
    try:
        raw = base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4))
    except (binascii.Error, ValueError) as exc:
        raise TokenInvalid("a segment is not base64url") from exc
    if base64.urlsafe_b64encode(raw).rstrip(b"=") != segment.encode():
        raise TokenInvalid("a segment is not the canonical base64url of its bytes")
    return raw


def canonical_segments(token: str) -> tuple[bytes, bytes, bytes]:
    """The decoded header, claims and signature of a JWS in compact form, spelled canonically."""
    if len(token) > MAX_TOKEN_LENGTH:
        raise TokenInvalid("token too long")
    segments = token.split(".")
    if len(segments) != 3:
        raise TokenInvalid("not three segments")
    header, claims, signature = (_segment_bytes(segment) for segment in segments)
    return header, claims, signature


def token_key(token: str) -> TokenKey:
    """The identity of a canonically spelled token (not verified: a key to look it up by)."""
    segments = canonical_segments(token)
    try:
        jti = json.loads(segments[1]).get("jti")
    except (ValueError, AttributeError, RecursionError) as exc:
        raise TokenInvalid("the claims are not a JSON object") from exc
    if not isinstance(jti, str):
        raise TokenInvalid("claim jti is missing or malformed")
    digest = hashlib.sha256()
    for segment in segments:  # each one's length first: no two splits of the bytes collide
        digest.update(len(segment).to_bytes(8, "big") + segment)
    return TokenKey(jti, digest.digest())


@dataclass(frozen=True)
class KeyMaterial:
    algorithm: str
    signing_key: str  # HS: the secret; RS: the private key (PEM)
    verification_key: str  # HS: the secret; RS: the public key (PEM), never the private one
    public_jwk: dict[str, str] | None  # RS only


def _b64uint(value: int) -> str:
    raw = value.to_bytes((value.bit_length() + 7) // 8, "big")
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


@lru_cache
def _rsa_material(algorithm: str, private_pem: str) -> KeyMaterial:
    try:
        private = serialization.load_pem_private_key(private_pem.encode(), password=None)
    except (ValueError, TypeError) as exc:
        raise ValueError("the JWT private key is not an unencrypted PEM private key") from exc
    if not isinstance(private, rsa.RSAPrivateKey) or private.key_size < 2048:
        raise ValueError(f"{algorithm} needs an RSA private key of at least 2048 bits")
    public = private.public_key()
    numbers = public.public_numbers()
    jwk = {"kty": "RSA", "e": _b64uint(numbers.e), "n": _b64uint(numbers.n)}
    # RFC 7638 thumbprint as the key id: stable for a key, changes when the key does.
    canonical = json.dumps(jwk, separators=(",", ":"), sort_keys=True).encode()
    kid = base64.urlsafe_b64encode(hashlib.sha256(canonical).digest()).rstrip(b"=").decode()
    public_pem = public.public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    ).decode()
    return KeyMaterial(
        algorithm=algorithm,
        signing_key=private_pem,
        verification_key=public_pem,
        public_jwk={**jwk, "kid": kid, "alg": algorithm, "use": "sig"},
    )


def key_material(settings: AuthSettings) -> KeyMaterial:
    algorithm = settings.jwt_algorithm
    if not algorithm.startswith("RS"):
        secret = reveal(settings.jwt_secret, "CURE_JWT_SECRET")
        return KeyMaterial(algorithm, secret, secret, None)
    if settings.jwt_private_key is not None:
        pem = settings.jwt_private_key.get_secret_value()
    elif settings.jwt_private_key_file is not None:
        pem = settings.jwt_private_key_file.read_text()
    else:  # refused by Settings already
        raise ValueError(f"{algorithm} needs a private key")
    return _rsa_material(algorithm, pem)


def jwks(settings: AuthSettings) -> dict[str, list[dict[str, str]]]:
    """The public verification keys as a JWK Set; empty for HS*, whose key is secret."""
    jwk = key_material(settings).public_jwk
    return {"keys": [jwk] if jwk else []}


def encode_access_token(
    settings: AuthSettings,
    *,
    subject: str,
    client_id: str,
    scopes: list[str],
    now: datetime | None = None,
    generation: int = 0,
) -> tuple[str, dict[str, Any]]:
    """A signed access token and its claims."""
    now = now or datetime.now(UTC)
    keys = key_material(settings)
    claims: dict[str, Any] = {
        "sub": subject,
        "client_id": client_id,
        "scope": " ".join(scopes),
        "iat": int(now.timestamp()),
        "exp": int((now + timedelta(seconds=settings.access_token_ttl_seconds)).timestamp()),
        "jti": uuid.uuid4().hex,
        "iss": settings.jwt_issuer,
        "aud": settings.jwt_audience,
        "gen": generation,  # the customer's token generation (a password reset moves it on)
    }
    headers = {"typ": TOKEN_TYPE}
    if keys.public_jwk:
        headers["kid"] = keys.public_jwk["kid"]
    token = jwt.encode(claims, keys.signing_key, algorithm=keys.algorithm, headers=headers)
    return token, claims


def decode_access_token(settings: AuthSettings, token: str) -> dict[str, Any]:
    """Verify signature (only the configured algorithm, never the token's ``alg`` alone),
    type, expiry, issuer, audience and that every claim is present and well typed. Only the
    canonical spelling of a token is accepted (``canonical_segments``)."""
    canonical_segments(token)
    keys = key_material(settings)
    try:
        claims = jwt.decode(
            token,
            keys.verification_key,
            algorithms=[keys.algorithm],
            audience=settings.jwt_audience,
            issuer=settings.jwt_issuer,
            options={
                f"require_{claim}": True for claim in ("exp", "iat", "sub", "jti", "aud", "iss")
            },
        )
        header = jwt.get_unverified_header(token)  # verified with the signature just above
    except (JWTError, ValueError, TypeError, AttributeError, RecursionError) as exc:
        raise TokenInvalid(str(exc)) from exc
    if header.get("typ") != TOKEN_TYPE:
        raise TokenInvalid("not an access token")
    for claim in ("sub", "client_id", "scope", "jti", "iss"):
        if not isinstance(claims.get(claim), str):
            raise TokenInvalid(f"claim {claim} is missing or malformed")
    if "gen" in claims and (not isinstance(claims["gen"], int) or isinstance(claims["gen"], bool)):
        raise TokenInvalid("claim gen is malformed")
    for claim in ("exp", "iat"):
        if not isinstance(claims.get(claim), int) or isinstance(claims.get(claim), bool):
            raise TokenInvalid(f"claim {claim} is missing or malformed")
    return claims
