"""Line endings of posted text: browsers send a text area's lines ending in CRLF. Stored as sent, a
version's diff would change every line and an export would carry "\r\n"; forms of edited text
(knowledge base, playbooks) take their data through ``lf_line_endings`` first."""

from __future__ import annotations

from django.utils.text import normalize_newlines


def lf_line_endings(data):
    """A copy of posted form data with CRLF and CR line endings as LF (None stays None)."""
    if data is None:
        return None
    copy = data.copy()
    for name in copy:
        values = copy.getlist(name) if hasattr(copy, "getlist") else [copy[name]]
        fixed = [normalize_newlines(v) if isinstance(v, str) else v for v in values]
        if hasattr(copy, "setlist"):
            copy.setlist(name, fixed)
        else:
            copy[name] = fixed[0]
    return copy
