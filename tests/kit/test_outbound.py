"""The outbound-network guard judges every IPv6 form that carries an IPv4 address by the address it
carries, and gives a host name one deadline to resolve.

Nothing here sends traffic: the guard is asked about addresses, and a name's resolution is a
resolver handed to it (a fault injected at the operating system's resolver, not a mock of CURE).
"""

import asyncio

import pytest

from cure.kit import outbound

REFUSED = [
    # IPv4-compatible (::/96, deprecated; a sit tunnel routes it to the IPv4 address)
    "::127.0.0.1",
    "::10.0.0.1",
    "::169.254.169.254",
    # IPv4-translated (::ffff:0:0/96, SIIT)
    "::ffff:0:127.0.0.1",
    "::ffff:0:169.254.169.254",
    # local-use NAT64 (64:ff9b:1::/48, RFC 8215): refused whole, wherever the site embeds
    "64:ff9b:1::7f00:1",
    "64:ff9b:1::10.0.0.1",
    "64:ff9b:1:a9fe:a9:fe00::",  # 169.254.169.254 in RFC 6052's /48 layout
    "64:ff9b:1::8.8.8.8",
    # the forms unwrapped before: IPv4-mapped, NAT64 (well-known), 6to4, Teredo
    "::ffff:127.0.0.1",
    "64:ff9b::a9fe:a9fe",
    "2002:a00:1::",
    "2001:0:4136:e378:8000:63bf:80ff:fffe",  # Teredo client 127.0.0.1 (obfuscated)
    # and IPv6's own
    "::",
    "::1",
    "fe80::1%eth0",
    "fd00::1",
]

ALLOWED = [
    "8.8.8.8",
    "2001:4860:4860::8888",
    "::8.8.8.8",  # judged by what it carries, like every other wrapper
    "64:ff9b::8.8.8.8",
    "2002:808:808::",
]


@pytest.mark.parametrize("address", REFUSED)
def test_wrapped_and_local_addresses_are_refused(address: str) -> None:
    assert outbound.refused_address(address)


@pytest.mark.parametrize("address", ALLOWED)
def test_public_addresses_pass(address: str) -> None:
    assert not outbound.refused_address(address)


@pytest.mark.parametrize("address", ["::127.0.0.1", "::ffff:0:a00:1", "64:ff9b:1::a9fe:a9fe"])
async def test_a_name_resolving_to_a_wrapped_local_address_is_refused(address: str) -> None:
    async def resolver(host: str, port: int) -> list[str]:
        return ["8.8.8.8", address]  # every address the name has must pass

    with pytest.raises(outbound.TargetRefused, match="non-public"):
        await outbound.check_target(
            "https://hooks.example.org/x", allow_private=False, resolver=resolver
        )
    allowed = await outbound.check_target(
        "https://hooks.example.org/x", allow_private=True, resolver=resolver
    )
    assert allowed.host == "hooks.example.org"


async def test_a_name_that_never_resolves_is_given_up_at_the_deadline() -> None:
    async def never(host: str, port: int) -> list[str]:  # a DNS server that does not answer
        await asyncio.get_running_loop().create_future()
        return []

    with pytest.raises(outbound.TargetRefused, match="did not resolve within 0.05s"):
        await outbound.check_target(
            "https://hooks.example.org/x", allow_private=False, resolver=never, resolve_seconds=0.05
        )


async def test_a_name_that_does_not_resolve_says_so() -> None:
    import socket

    async def unknown(host: str, port: int) -> list[str]:
        raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")

    with pytest.raises(outbound.TargetRefused, match="does not resolve"):
        await outbound.check_target(
            "https://hooks.example.org/x", allow_private=False, resolver=unknown, resolve_seconds=1
        )


async def test_names_given_at_submit_never_hold_up_cures_own_lookups() -> None:
    """Every thread that resolves submitted names is stuck (names whose DNS never answers):
    CURE's own lookups (callbacks, staging) still resolve, on threads of their own."""
    import asyncio
    import threading

    from cure.kit import outbound

    stuck = threading.Event()
    blockers = [outbound.SUBMIT_THREADS.submit(stuck.wait, 60) for _ in range(4)]
    try:
        addresses = await asyncio.wait_for(outbound.resolve("127.0.0.1", 80), 30)
        assert addresses == ["127.0.0.1"]
    finally:
        stuck.set()
        for blocker in blockers:
            blocker.result(timeout=10)
