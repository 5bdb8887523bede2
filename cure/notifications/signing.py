"""Signatures of callback requests: HMAC-SHA256 over the timestamp and the body."""

import hashlib
import hmac
import time
import uuid

from cure.config import Settings, reveal

SIGNATURE_HEADER = "X-Cure-Signature"


def customer_secret(settings: Settings, customer_id: uuid.UUID) -> str:
    """The customer's callback signing secret, derived from the server key (nothing to store)."""
    return hmac.new(
        reveal(settings.callback_signing_key, "CURE_CALLBACK_SIGNING_KEY").encode(),
        f"callback:{customer_id}".encode(),
        hashlib.sha256,
    ).hexdigest()


def sign(secret: str, body: bytes, *, timestamp: int | None = None) -> str:
    """The header value ``t=<unix time>,v1=<hex HMAC-SHA256 of "<t>." + body>``."""
    stamp = int(time.time()) if timestamp is None else timestamp
    digest = hmac.new(secret.encode(), f"{stamp}.".encode() + body, hashlib.sha256).hexdigest()
    return f"t={stamp},v1={digest}"


def verify(secret: str, body: bytes, header: str, *, tolerance_seconds: int = 300) -> bool:
    """What a receiver does: check the signature and that it is recent (replays are refused)."""
    try:
        fields = dict(part.split("=", 1) for part in header.split(","))
        stamp = int(fields["t"])
    except (ValueError, KeyError):
        return False
    if abs(time.time() - stamp) > tolerance_seconds:
        return False
    return hmac.compare_digest(sign(secret, body, timestamp=stamp), header)
