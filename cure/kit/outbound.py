"""The outbound-network guard: which URLs may be called, and calling them only at the address
that was checked (callbacks today; any fetch from a host a customer can name).

Never a loopback, private, link-local, shared (CGNAT), reserved or multicast address, nor one
hidden inside an IPv6 form (IPv4-mapped, IPv4-compatible, IPv4-translated, 6to4, Teredo, NAT64),
unless allowed; local-use NAT64 (``64:ff9b:1::/48``) is refused whole, since where a site puts
the IPv4 address in it is the site's choice. The request goes to the very address that passed
the check, so a name that resolves elsewhere a moment later (DNS rebinding) reaches nothing new.
"""

import asyncio
import ipaddress
import socket
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from urllib.parse import urlsplit, urlunsplit

# IPv6 forms whose last 32 bits are an IPv4 address the packet may end up at.
LAST_32_BITS = (
    ipaddress.ip_network("64:ff9b::/96"),  # NAT64, well-known prefix (RFC 6052)
    ipaddress.ip_network("::/96"),  # IPv4-compatible (RFC 4291, deprecated; sit tunnels route it)
    ipaddress.ip_network("::ffff:0:0:0/96"),  # IPv4-translated (SIIT, RFC 2765)
)
LOCAL_NAT64 = ipaddress.ip_network("64:ff9b:1::/48")  # RFC 8215: the embedding is per site


class TargetRefused(ValueError):
    pass


@dataclass(frozen=True)
class Target:
    """Where to send a request: ``url`` names the checked address; ``host`` is the Host header
    (and the TLS server name, for https)."""

    url: str
    host: str
    tls_name: str | None


def _embedded(ip: ipaddress.IPv4Address | ipaddress.IPv6Address) -> list[ipaddress.IPv4Address]:
    if not isinstance(ip, ipaddress.IPv6Address):
        return []
    found = [a for a in (ip.ipv4_mapped, ip.sixtofour) if a is not None]
    if ip.teredo is not None:
        found += list(ip.teredo)
    if any(ip in network for network in LAST_32_BITS):
        found.append(ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF))
    return found


def refused_address(address: str) -> bool:
    ip = ipaddress.ip_address(address.split("%", 1)[0])
    if isinstance(ip, ipaddress.IPv6Address) and ip in LOCAL_NAT64:
        return True
    return any(not a.is_global or a.is_multicast for a in (ip, *_embedded(ip)))


Resolver = Callable[[str, int], Awaitable[list[str]]]


def resolver_on(threads: ThreadPoolExecutor) -> Resolver:
    """The OS resolver on ``threads``. getaddrinfo cannot be interrupted: a caller's deadline
    gives up waiting, and the lookup ends in its own time on one of these few threads, never on
    the threads the rest of the process uses."""

    async def resolve(host: str, port: int) -> list[str]:
        loop = asyncio.get_running_loop()
        infos = await loop.run_in_executor(
            threads, lambda: socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
        )
        return [str(info[4][0]) for info in infos]

    return resolve


# CURE's own calls (callbacks, staging) and the names customers give at submit resolve on
# threads of their own: hosts whose DNS never answers, given at submit, can hold up only submits.
SUBMIT_THREADS = ThreadPoolExecutor(4, thread_name_prefix="cure-dns-submit")
resolve = resolver_on(ThreadPoolExecutor(4, thread_name_prefix="cure-dns"))
resolve_at_submit = resolver_on(SUBMIT_THREADS)


async def _addresses(host: str, port: int, resolver: Resolver, seconds: float | None) -> list[str]:
    """Every address of ``host``, resolved within ``seconds`` (None: the caller's deadline)."""
    deadline = asyncio.timeout(seconds)
    try:
        async with deadline:
            addresses = await resolver(host, port)
    except (OSError, UnicodeError, ValueError) as exc:  # UnicodeError: a label over 63 bytes
        if deadline.expired():  # TimeoutError is an OSError
            raise TargetRefused(f"the host {host!r} did not resolve within {seconds:g}s") from exc
        raise TargetRefused(f"the host {host!r} does not resolve") from exc
    if not addresses:
        raise TargetRefused(f"the host {host!r} does not resolve")
    return addresses


async def check_target(
    url: str,
    *,
    allow_private: bool,
    resolver: Resolver | None = None,
    resolve_seconds: float | None = None,
) -> Target:
    """The address to call for ``url``, or TargetRefused; resolves its host name within
    ``resolve_seconds`` (None: the caller gives its own deadline around this call).

    Checked at submit and again before each call, and every address the name has must pass.
    """
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise TargetRefused("the URL must be http or https with a host")
    if parts.username or parts.password:
        raise TargetRefused("the URL must not carry credentials")
    port = parts.port or (443 if parts.scheme == "https" else 80)
    addresses = await _addresses(parts.hostname, port, resolver or resolve, resolve_seconds)
    if not allow_private and any(refused_address(a) for a in addresses):
        raise TargetRefused(
            f"{parts.hostname} is a loopback, private, link-local or otherwise non-public "
            "address, which is not allowed"
        )
    address = addresses[0]
    literal = f"[{address}]" if ":" in address else address
    pinned = urlunsplit((parts.scheme, f"{literal}:{port}", parts.path or "/", parts.query, ""))
    host = parts.netloc.rsplit("@", 1)[-1]
    return Target(
        url=pinned, host=host, tls_name=parts.hostname if parts.scheme == "https" else None
    )
