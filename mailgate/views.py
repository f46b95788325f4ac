"""Downloading a mail attachment from a ticket."""

from __future__ import annotations

from urllib.parse import quote

from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpRequest, HttpResponse
from django.views.decorators.http import require_GET

from mailgate import selectors
from mailgate.models import Attachment


@login_required
@require_GET
def attachment_download(request: HttpRequest, attachment_id: int) -> HttpResponse:
    try:
        attachment = selectors.attachment_for_download(user=request.user, attachment_id=attachment_id)
    except Attachment.DoesNotExist:
        raise Http404("No such attachment") from None
    if attachment.content_pruned_at:
        notice = f"{attachment.filename}: pruned on {attachment.content_pruned_at:%Y-%m-%d} under the retention policy."
        return HttpResponse(notice, status=410, content_type="text/plain; charset=utf-8")
    # Whatever the sender claimed, the browser gets opaque bytes to save, never a page to render.
    response = HttpResponse(bytes(attachment.content), content_type="application/octet-stream")
    ascii_name = attachment.filename.encode("ascii", "replace").decode().replace("?", "_")
    response["Content-Disposition"] = (
        f"attachment; filename=\"{ascii_name}\"; filename*=UTF-8''{quote(attachment.filename)}"
    )
    response["X-Content-Type-Options"] = "nosniff"
    response["Content-Security-Policy"] = "sandbox; default-src 'none'"
    return response
