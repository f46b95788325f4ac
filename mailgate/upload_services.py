"""Files a tech attaches in the browser to a public reply, an internal note or a new ticket.

They are kept like mail attachments (mailgate.models.Attachment, bytes in the database, pruned by the
same retention), linked to the timeline entry they came with, and served only by the same download
view: as an attachment, opaque bytes, never a page. A reply's files go to the customer with its mail
(services.outbound_send).

Limits: each file at most TRIAGE_UPLOAD_MAX_FILE_BYTES; one message's files together at most
TRIAGE_MAIL_MAX_BYTES (what the desk accepts in one inbound mail, and a reply carrying them is mailed);
at most parsing.MAX_ATTACHMENTS files. Over a limit, nothing is stored and the whole action is refused,
so the tech's text is never sent without the files they meant to send with it.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.files.uploadedfile import UploadedFile
from django.template.defaultfilters import filesizeformat

from mailgate import parsing
from mailgate.models import Attachment
from triage.models import TicketEvent

# A content type as the browser declared it, when it has the shape of one; otherwise opaque bytes.
CONTENT_TYPE = re.compile(r"^[A-Za-z0-9][\w.+-]*/[A-Za-z0-9][\w.+-]*$")


def uploads_check(*, files: Sequence[UploadedFile]) -> None:
    """Raises ValidationError naming every limit the files exceed (the form shows it on its files field)."""
    errors = []
    if len(files) > parsing.MAX_ATTACHMENTS:
        errors.append(f"At most {parsing.MAX_ATTACHMENTS} files in one message; you chose {len(files)}.")
    per_file = settings.TRIAGE_UPLOAD_MAX_FILE_BYTES
    # An uploaded file always has its size and name (the stubs allow None for files built by hand).
    for f in files:
        if (f.size or 0) > per_file:
            errors.append(
                f"{parsing.safe_filename(f.name or '')} is {filesizeformat(f.size or 0)}; "
                f"each file may be at most {filesizeformat(per_file)}."
            )
    total = sum(f.size or 0 for f in files)
    if total > settings.TRIAGE_MAIL_MAX_BYTES:
        errors.append(
            f"The files come to {filesizeformat(total)}; one message's files may be at most "
            f"{filesizeformat(settings.TRIAGE_MAIL_MAX_BYTES)} together."
        )
    if errors:
        errors.append("Nothing was sent: your text is kept; choose the files again.")
        raise ValidationError(errors, code="too_large")


def _content_type(declared: str | None) -> str:
    declared = (declared or "").strip().lower()
    return declared if len(declared) <= 100 and CONTENT_TYPE.match(declared) else "application/octet-stream"


def attachments_store(*, event: TicketEvent, files: Sequence[UploadedFile], by) -> list[Attachment]:
    """Keep ``files`` on ``event`` (and its ticket). Checks the limits again: a caller that skipped the
    form's check still cannot store more than they allow."""
    if not files:
        return []
    uploads_check(files=files)
    kept = []
    for f in files:
        content = b"".join(f.chunks())
        kept.append(
            Attachment(
                ticket_id=event.ticket_id,
                event=event,
                uploaded_by=by,
                filename=parsing.safe_filename(f.name or ""),
                content_type=_content_type(f.content_type),
                size=len(content),
                content=content,
            )
        )
    return Attachment.objects.bulk_create(kept)
