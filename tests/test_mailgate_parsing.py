"""The pure half of the mail gateway: parsing, machine senders, quotes, file names."""

from __future__ import annotations

import pytest
from django.core.exceptions import ValidationError

from mailgate import parsing
from mailgate import selectors as mail_selectors
from mailgate import services as mail_services

QUOTES = {
    "gmail attribution": (
        "Yes, restarted.\n\nOn Tue, 1 Jul 2025 at 10:00, Desk <s@d.test> wrote:\n> restart?",
        "Yes, restarted.",
    ),
    "wrapped attribution": ("Done.\n\nOn Tue, 1 Jul 2025 at 10:00, Desk Support\n<s@d.test> wrote:\n> x", "Done."),
    "outlook": ("Fixed.\n\n-----Original Message-----\nFrom: Desk\nSent: today\n\nold text", "Fixed."),
    "outlook header block": ("Fixed.\n\n________________________________\nFrom: Desk <s@d.test>\nold", "Fixed."),
    "interleaved quotes": ("> did it work?\nIt did.\n> and now?\nStill fine.", "It did.\nStill fine."),
    "signature": ("Thanks!\n-- \nOlga, Northwind ops", "Thanks!"),
    "only a quote keeps everything": ("> forwarded as is", "> forwarded as is"),
}


@pytest.mark.parametrize("text,expected", QUOTES.values(), ids=QUOTES.keys())
def test_it_keeps_only_the_new_part_of_a_reply(text, expected):
    assert parsing.strip_quoted(text) == expected


def _raw(headers: str, body: str = "hi") -> bytes:
    return (headers.strip() + "\r\n\r\n" + body + "\r\n").replace("\n", "\r\n").replace("\r\r", "\r").encode()


MACHINE = {
    "person": ("From: a@b.test\nSubject: hi", "a@b.test", ""),
    "auto-submitted no": ("From: a@b.test\nAuto-Submitted: no", "a@b.test", ""),
    "auto-submitted": ("From: a@b.test\nAuto-Submitted: auto-generated", "a@b.test", "auto_reply"),
    "precedence junk": ("From: a@b.test\nPrecedence: junk", "a@b.test", "auto_reply"),
    "precedence list": ("From: a@b.test\nPrecedence: list", "a@b.test", "auto_reply"),
    "x-autorespond": ("From: a@b.test\nX-Autorespond: yes", "a@b.test", "auto_reply"),
    "postmaster": ("From: postmaster@b.test", "postmaster@b.test", "bounce"),
    "empty envelope": ("From: a@b.test", "", "bounce"),
    "dsn": (
        "From: a@b.test\nContent-Type: multipart/report; report-type=delivery-status; boundary=x",
        "a@b.test",
        "bounce",
    ),
}


@pytest.mark.parametrize("headers,envelope_from,kind", MACHINE.values(), ids=MACHINE.keys())
def test_it_recognises_mail_sent_by_machines(headers, envelope_from, kind):
    assert parsing.parse(_raw(headers), envelope_from=envelope_from).machine[0] == kind


MALFORMED = {
    "empty": (b"", "empty message"),
    "no from": (_raw("Subject: x"), "no From header"),
    "from without address": (_raw("From: just a name"), "no usable address"),
}


@pytest.mark.parametrize("raw,reason", MALFORMED.values(), ids=MALFORMED.keys())
def test_it_says_why_a_message_is_malformed(raw, reason):
    with pytest.raises(parsing.Malformed, match=reason):
        parsing.parse(raw)


def test_it_reads_threading_headers_and_the_ticket_reference():
    parsed = parsing.parse(
        _raw(
            "From: A <A@B.test>\nSubject: Re: [#42] disk\nMessage-ID: <m3@b>\n"
            "In-Reply-To: <m2@b>\nReferences: <m1@b> <m2@b>"
        )
    )
    assert (parsed.from_address, parsed.message_id, parsed.ticket_reference()) == ("a@b.test", "<m3@b>", 42)
    assert parsed.thread_ids == ["<m2@b>", "<m1@b>"]


def test_an_html_only_message_becomes_text():
    parsed = parsing.parse(_raw("From: a@b.test\nContent-Type: text/html", "<p>Disk <b>full</b></p><script>x"))
    assert parsed.body.startswith("Disk full")


@pytest.mark.parametrize(
    "name,safe",
    [("../../etc/passwd", "passwd"), ('C:\\x\\"a".txt', "a.txt"), ("\x00\x1b.bashrc", "bashrc"), ("", "attachment")],
)
def test_attachment_names_lose_paths_quotes_and_control_characters(name, safe):
    assert parsing.safe_filename(name) == safe


def test_routes_are_validated_and_belong_to_one_customer(customer, db):
    from triage.models import Customer, SlaTier

    assert mail_services.mail_route_add(customer=customer, value="@Northwind.TEST ").value == "northwind.test"
    assert mail_services.mail_route_add(customer=customer, value="Boss@Elsewhere.test").kind == "address"
    other = Customer.objects.create(name="Contoso", sla_tier=SlaTier.objects.get(name="Gold"))
    with pytest.raises(ValidationError, match="already routes to Northwind"):
        mail_services.mail_route_add(customer=other, value="northwind.test")
    with pytest.raises(ValidationError):
        mail_services.mail_route_add(customer=other, value="not a domain")
    assert mail_selectors.route_customer(address="boss@elsewhere.test")[0] == customer
    assert mail_selectors.route_customer(address="x@unknown.test") == (None, "no route for the sender")
