"""The ticket page's mail attachments.

An inclusion tag because the ticket view belongs to the desk and knows nothing
of mail; the tag only calls a selector and renders the list.
"""

from django import template

from mailgate import selectors

register = template.Library()


@register.inclusion_tag("mailgate/_ticket_attachments.html")
def ticket_attachments(ticket):
    return {"attachments": selectors.ticket_attachments(ticket=ticket)}


@register.inclusion_tag("mailgate/_reply_recipients.html")
def reply_recipients(ticket, oob=False):
    """Who the reply composer's text will be mailed to, so the tech sees it before sending
    (``oob``: swapped in by a People change, tickets/_ticket_update.html)."""
    addresses = selectors.ticket_correspondents(ticket=ticket)
    return {"to": addresses[:1], "cc": addresses[1:], "customer": ticket.customer, "oob": oob}
