"""Which callback URLs may be called: never loopback, link-local or private unless allowed."""

import asyncio
import ipaddress
import socket
from urllib.parse import urlsplit


class TargetRefused(ValueError):
    pass


def _refused_address(address: str) -> bool:
    ip = ipaddress.ip_address(address.split("%", 1)[0])
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return (
        ip.is_loopback
        or ip.is_link_local
        or ip.is_private
        or ip.is_reserved
        or ip.is_multicast
        or ip.is_unspecified
    )


async def resolve(host: str, port: int) -> list[str]:
    infos = await asyncio.to_thread(socket.getaddrinfo, host, port, type=socket.SOCK_STREAM)
    return sorted({str(info[4][0]) for info in infos})


async def check_target(url: str, *, allow_private: bool) -> None:
    """Raise TargetRefused when ``url`` may not be called; resolves its host name.

    Checked at submit and again before each call, so a name that later resolves elsewhere
    (DNS rebinding) is still refused.
    """
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise TargetRefused("callback_url must be an http or https URL with a host")
    if parts.username or parts.password:
        raise TargetRefused("callback_url must not carry credentials")
    port = parts.port or (443 if parts.scheme == "https" else 80)
    try:
        addresses = await resolve(parts.hostname, port)
    except (OSError, UnicodeError, ValueError) as exc:  # UnicodeError: a label over 63 bytes
        raise TargetRefused(f"callback_url host {parts.hostname!r} does not resolve") from exc
    if not allow_private and any(_refused_address(a) for a in addresses):
        raise TargetRefused(
            "callback_url points at a loopback, link-local or private address, which is not allowed"
        )
