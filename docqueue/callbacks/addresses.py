"""Where a callback may go: public addresses only, unless the operator allows a named internal host or network.

A callback URL is chosen by any user, so the worker must not become their
way into the service's own network: loopback, private, link-local (the
cloud metadata address 169.254.169.254 among them), multicast, reserved and
unspecified addresses are refused, IPv4 hidden inside IPv6 (mapped, 6to4,
Teredo) included. The host is resolved and every address it resolves to is
vetted: when the URL is given (`urls.py`) and again just before each POST
(`http_post.py`), which then connects to the vetted address itself, so a
name that resolves differently the second time (DNS rebinding) gains nothing.

`CALLBACK_ALLOWED_HOSTS` names the exceptions: host names (any address they
resolve to is allowed), addresses, or networks in CIDR form.
"""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Iterable

Address = ipaddress.IPv4Address | ipaddress.IPv6Address


class AddressRefused(ValueError):
    """The host resolves to no address docqueue will send to; the message says why, in plain words."""


def _embedded_ipv4(address: ipaddress.IPv6Address) -> ipaddress.IPv4Address | None:
    # An IPv6 address can carry an IPv4 one that the network routes to: mapped, 6to4 and Teredo's client.
    if address.ipv4_mapped is not None:
        return address.ipv4_mapped
    if address.sixtofour is not None:
        return address.sixtofour
    if address.teredo is not None:
        return address.teredo[1]
    return None


def is_public(address: Address) -> bool:
    """Whether `address` is an ordinary internet address (not private, loopback, link-local, multicast...)."""
    if isinstance(address, ipaddress.IPv6Address):
        embedded = _embedded_ipv4(address)
        if embedded is not None and not is_public(embedded):
            return False
    return address.is_global and not (
        address.is_multicast
        or address.is_private
        or address.is_loopback
        or address.is_link_local
        or address.is_reserved
        or address.is_unspecified
    )


def _allowed_by_network(address: Address, allowed: Iterable[str]) -> bool:
    for entry in allowed:
        try:
            network = ipaddress.ip_network(entry, strict=False)
        except ValueError:
            continue  # a host name, matched by `allowed_host`
        if address.version == network.version and address in network:
            return True
    return False


def allowed_host(host: str, allowed: Iterable[str]) -> bool:
    """Whether the operator named `host` itself in CALLBACK_ALLOWED_HOSTS (then any address it resolves to goes)."""
    return host.lower().rstrip(".") in allowed


def resolve(host: str, port: int) -> list[Address]:
    """Every address `host` resolves to now, in the resolver's order; AddressRefused if it resolves to none."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError):
        raise AddressRefused("its host name could not be resolved") from None
    addresses: list[Address] = []
    for info in infos:
        # A scope id (`fe80::1%eth0`) is not part of the address.
        address = ipaddress.ip_address(str(info[4][0]).split("%", 1)[0])
        if address not in addresses:
            addresses.append(address)
    if not addresses:
        raise AddressRefused("its host name could not be resolved")
    return addresses


def vetted_addresses(host: str, port: int, allowed: Iterable[str]) -> list[Address]:
    """The addresses of `host` that a callback may be sent to; AddressRefused unless every one of them may.

    One refused address refuses the host: a name that answers both a public
    and an internal address would otherwise reach the internal one by chance.
    """
    allowed = tuple(allowed)
    addresses = resolve(host, port)
    if allowed_host(host, allowed):
        return addresses
    for address in addresses:
        if not (is_public(address) or _allowed_by_network(address, allowed)):
            raise AddressRefused(
                "its host is a private, loopback, link-local, multicast or reserved address, "
                "which docqueue does not send callbacks to"
            )
    return addresses
