"""The words of a complaint, as the ranking and the playbook proposal compare them.

Deliberately small: lower-cased word stems with a stop list, no dictionary and no model, so
"Mail sits 30 seconds before sending" and "SMTP greeting delayed ... send" meet on "mail",
"send" and "delay"-like stems. A few synonyms techs and customers use for the same thing are
folded together (slow/delay/wait, mail/smtp/email).
"""

from __future__ import annotations

import re

_WORD = re.compile(r"[a-z][a-z0-9]{2,}")
STOP = frozenset(
    re.findall(
        r"\S+",
        """
    the and for are but not you all any can had her was one our out has have from they this that with
    what when where which while who will would there their them then than into over under about after
    before again very just also only some such each more most other its it's been being does did doing
    please thanks thank hello regards since still cannot can't could should customer server servers
    host hosts issue problem ticket users user seems seem getting get got today now every shows show
""",
    )
)
# Words that name the same thing in a complaint and in a symptom.
SYNONYMS = {
    "slow": "delay",
    "slowly": "delay",
    "sluggish": "delay",
    "delayed": "delay",
    "delays": "delay",
    "lag": "delay",
    "wait": "delay",
    "waits": "delay",
    "waiting": "delay",
    "sits": "delay",
    "latency": "delay",
    "ages": "delay",
    # Hanging is not slowness: a request that never finishes points at other evidence than a late one.
    "hangs": "hang",
    "hanging": "hang",
    "hung": "hang",
    "stall": "hang",
    "stalls": "hang",
    "stuck": "hang",
    "freezes": "hang",
    "frozen": "hang",
    "email": "mail",
    "e-mail": "mail",
    "smtp": "mail",
    "mails": "mail",
    "outlook": "mail",
    "mta": "mail",
    "sending": "send",
    "sent": "send",
    "sends": "send",
    "login": "log",
    "logins": "log",
    "logging": "log",
    "ssh": "log",
    "dns": "resolv",
    "resolver": "resolv",
    "resolvers": "resolv",
    "resolve": "resolv",
    "lookup": "resolv",
    "lookups": "resolv",
    "nameserver": "resolv",
    "nameservers": "resolv",
    "down": "unreachable",
    "unreachable": "unreachable",
    "offline": "unreachable",
    "unresponsive": "unreachable",
    "network": "net",
    "interface": "net",
    "nic": "net",
    "link": "net",
    "ping": "net",
    "full": "space",
    "space": "space",
    "disk": "space",
    "connections": "connect",
    "connection": "connect",
    "connecting": "connect",
    "sockets": "connect",
}


def stem(word: str) -> str:
    word = SYNONYMS.get(word, word)
    for suffix in ("ing", "ed", "es", "s"):
        if len(word) > len(suffix) + 3 and word.endswith(suffix):
            word = word[: -len(suffix)]
            break
    return SYNONYMS.get(word, word)


def words(text: str) -> set[str]:
    """The distinct stems of ``text`` that carry meaning."""
    return {stem(w) for w in _WORD.findall((text or "").lower().replace("e-mail", "email")) if w not in STOP}


def overlap(complaint: set[str], *, title: str, body: str = "") -> float:
    """How much of a text explains the complaint: each shared word of the title counts 1,
    of the body only 0.5; capped at 3 so a long explanation cannot win by length."""
    in_title = complaint & words(title)
    in_body = (complaint & words(body)) - in_title
    return min(3.0, len(in_title) + 0.5 * len(in_body))
