"""Where a webhook may be sent: public addresses only, unless TRIAGE_WEBHOOK_ALLOW_PRIVATE.

An admin types the URL, but the worker sends from inside the desk's network: to loopback,
private, link-local (cloud metadata at 169.254.169.254) or other non-global addresses it
would reach services that trust that network (SSRF). A name is resolved and every address it
has is checked, when the endpoint is saved and again at each delivery; the delivery then
connects to the address it checked, so a DNS server cannot answer a second lookup differently.
"""

from __future__ import annotations

import ipaddress
import socket

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
NAT64 = ipaddress.ip_network("64:ff9b::/96")


class Refused(Exception):
    """The URL's host is (or resolves to) an address webhooks may not reach; the message says which."""


def _embedded_ipv4(ip: IPAddress) -> ipaddress.IPv4Address | None:
    # IPv6 forms that carry an IPv4 address the network stack (or a gateway) will reach.
    if isinstance(ip, ipaddress.IPv4Address):
        return None
    if ip.ipv4_mapped:
        return ip.ipv4_mapped
    if ip.sixtofour:
        return ip.sixtofour
    if ip in NAT64:
        return ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
    return None


def non_public_kind(ip: IPAddress) -> str | None:
    """What kind of non-public address `ip` is ('loopback', 'private', ...), None when it is public."""
    ip = _embedded_ipv4(ip) or ip
    for kind, flag in (
        ("loopback", ip.is_loopback),
        ("link-local", ip.is_link_local),
        ("unspecified", ip.is_unspecified),
        ("multicast", ip.is_multicast),
        ("private", ip.is_private),
        ("reserved", ip.is_reserved),
    ):
        if flag:
            return kind
    return None if ip.is_global else "non-public"


def resolve(host: str, port: int) -> list[str]:
    """Every address `host` has (a literal address is itself); socket.gaierror when it has none.
    The lookup is bounded by the resolver's own timeout and attempts (resolv.conf)."""
    infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    # For the stream sockets of IP families asked for here the address is always a string (typeshed allows an int).
    return list(dict.fromkeys(str(info[4][0]) for info in infos))


def checked_addresses(host: str, port: int, *, allow_private: bool) -> list[str]:
    """The addresses to connect to for `host`; raises Refused if any of them is not public."""
    addresses = resolve(host, port)
    if allow_private:
        return addresses
    for address in addresses:
        kind = non_public_kind(ipaddress.ip_address(address.split("%", 1)[0]))
        if kind:
            shown = host if host == address else f"{host} resolves to {address}, which"
            raise Refused(
                f"{shown} is a {kind} address: webhooks are sent to public addresses only "
                "(TRIAGE_WEBHOOK_ALLOW_PRIVATE allows others)."
            )
    return addresses
