"""A restricted tcpdump filter language: allowlisted tokens only.

Filters are checked token by token against what triage actually needs (hosts,
nets, ports, protocols, boolean logic, TCP flag tests, sizes) and re-joined with
single spaces. Anything else (quotes, ``;``, ``$``, backticks, host names that
would make tcpdump resolve DNS, unknown words) is refused, even though the
result is also shell-quoted: never escape and hope.
"""

from __future__ import annotations

import ipaddress
import re

MAX_LENGTH = 256
MAX_TOKENS = 64

WORDS = frozenset(
    {
        # qualifiers and protocols
        "host", "net", "mask", "port", "portrange", "src", "dst",
        "tcp", "udp", "icmp", "icmp6", "ip", "ip6", "arp",
        # logic and sizes
        "and", "or", "not", "less", "greater", "len",
        # named offsets and constants for flag tests
        "tcpflags", "tcp-fin", "tcp-syn", "tcp-rst", "tcp-push", "tcp-ack", "tcp-urg", "tcp-ece", "tcp-cwr",
        "icmptype", "icmpcode", "icmp-echoreply", "icmp-unreach", "icmp-echo", "icmp-timxceed",
    }
)  # fmt: skip

_TOKEN = re.compile(
    r"""
    (?P<space>\ +)
  | (?P<index>(?:tcp|udp|icmp6?|ip6?)\[(?:tcpflags|icmptype|icmpcode|[0-9]{1,3})(?::[124])?\])
  | (?P<ipv6>(?=[0-9A-Fa-f:]*:)[0-9A-Fa-f:.]+(?:/[0-9]{1,3})?)
  | (?P<ipv4>[0-9]{1,3}(?:\.[0-9]{1,3}){3}(?:/[0-9]{1,2})?)
  | (?P<range>[0-9]{1,5}-[0-9]{1,5})
  | (?P<hex>0[xX][0-9A-Fa-f]{1,8})
  | (?P<int>[0-9]{1,10})
  | (?P<word>[A-Za-z][A-Za-z0-9-]*)
  | (?P<op>!=|==|>=|<=|&&|\|\||<<|>>|[()&|!=<>+*/-])
    """,
    re.VERBOSE | re.ASCII,
)


class BpfError(ValueError):
    """The filter is outside the allowed grammar; the message says where."""


def _check_address(text: str) -> None:
    try:
        if "/" in text:
            ipaddress.ip_network(text, strict=False)
        else:
            ipaddress.ip_address(text)
    except ValueError:
        raise BpfError(f"{text!r} is not an IP address or network") from None


def clean_bpf(text: str) -> str:
    """The filter re-spaced from its tokens (``host 10.0.0.1 and (tcp port 25)``); BpfError if not allowed."""
    if len(text) > MAX_LENGTH:
        raise BpfError(f"is {len(text)} characters long; the limit is {MAX_LENGTH}")
    tokens: list[str] = []
    depth = 0
    pos = 0
    while pos < len(text):
        m = _TOKEN.match(text, pos)
        if m is None:
            raise BpfError(f"{text[pos]!r} at position {pos + 1} is not allowed in a capture filter")
        kind, lexeme = m.lastgroup, m.group()
        pos = m.end()
        if kind == "space":
            continue
        if kind in ("ipv4", "ipv6"):
            _check_address(lexeme)
        elif kind == "range":
            low, high = (int(p) for p in lexeme.split("-"))
            if not 1 <= low <= high <= 65535:
                raise BpfError(f"port range {lexeme} must run upwards within 1-65535")
        elif kind == "word" and lexeme not in WORDS:
            raise BpfError(f"{lexeme!r} is not an allowed word (use IP addresses, ports and protocols)")
        elif lexeme == "(":
            depth += 1
        elif lexeme == ")":
            depth -= 1
            if depth < 0:
                raise BpfError(f"a ')' at position {pos} has no matching '('")
        tokens.append(lexeme)
        if len(tokens) > MAX_TOKENS:
            raise BpfError(f"has more than {MAX_TOKENS} terms")
    if depth:
        raise BpfError("has an unclosed '('")
    if not tokens:
        raise BpfError("is blank; leave it empty to capture everything")
    if tokens and tokens[0] in ("-", "+", "*", "/", "&", "|", "&&", "||", "=", "==", "!=", "<", ">", "<=", ">="):
        raise BpfError(f"cannot start with {tokens[0]!r}")
    text = ""
    for previous, lexeme in zip(["(", *tokens[:-1]], tokens, strict=True):
        text += lexeme if previous == "(" or lexeme == ")" else " " + lexeme
    return text
