"""The per-address limit on anonymous reads of the catalogue and of the facades over it (STAC).

Anyone may search the catalogue without an account; each client address may do so
``anonymous_reads_per_minute`` times a minute per API process (a token bucket in memory, see
``cure.kit.ratelimit``), then gets 429 with Retry-After. Callers with a valid token are not
counted: they are known, and their own limits apply elsewhere.
"""

import ipaddress

from fastapi import Request

from cure.auth.dependencies import OptionalPrincipal
from cure.kit.errors import TooManyRequests
from cure.kit.metrics import READS_LIMITED
from cure.kit.ratelimit import TokenBuckets
from cure.kit.state import StateKey, state_of

ANONYMOUS_READS = StateKey[TokenBuckets]("anonymous reads")


class AnonymousReadsLimited(TooManyRequests):
    pass


def client_key(address: str) -> str:
    """Whose bucket a read takes from: an IPv4 address, or an IPv6 address's /64 (one host
    commonly has a whole /64, so keying single addresses would give it endless buckets)."""
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return address
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.ipv4_mapped is not None:
            return str(ip.ipv4_mapped)
        return str(ipaddress.IPv6Network((ip, 64), strict=False))
    return str(ip)


def _buckets(request: Request) -> TokenBuckets:
    state = state_of(request.app)
    return state.made(
        ANONYMOUS_READS, lambda: TokenBuckets(state.settings.anonymous_reads_per_minute)
    )


async def limit_anonymous_reads(request: Request, principal: OptionalPrincipal) -> None:
    """A dependency: count an anonymous read against its address, or refuse it (429)."""
    if principal is not None:
        return
    # Behind a proxy, run uvicorn with --forwarded-allow-ips so this is the real client address.
    address = request.client.host if request.client else "unknown"
    wait = _buckets(request).take(client_key(address))
    if wait:
        READS_LIMITED.inc()
        raise AnonymousReadsLimited(
            f"too many anonymous reads from this address; try again in {wait} s, or send an "
            "access token",
            retry_after=wait,
        )
