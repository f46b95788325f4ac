"""Every response carries the Content-Security-Policy: pages, errors, the API and static files;
and no template carries inline script or style, which the policy would block."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from django.conf import settings

ROOT = Path(__file__).resolve().parent.parent


@pytest.mark.parametrize(
    "path", ["/login/", "/healthz", "/api/v1/tickets/", "/no-such-page/", "/static/css/desk.css", "/api/v1/docs/"]
)
def test_every_response_carries_the_policy(client, db, path):
    response = client.get(path)
    policy = response.headers["Content-Security-Policy"]
    assert "script-src 'self';" in policy and "style-src 'self';" in policy
    assert "unsafe-inline" not in policy and "unsafe-eval" not in policy and "frame-ancestors 'none'" in policy


def test_no_template_has_inline_script_style_or_handlers():
    # A <script> without src (json_script's data blocks are rendered, not written in templates).
    inline = re.compile(r"<script(?![^>]*\ssrc=)[^>]*>|<style|\sstyle=|\son[a-z]+=", re.I)
    offenders = [
        f"{path.relative_to(ROOT)}: {match.group(0)}"
        for folder in settings.TEMPLATES[0]["DIRS"] + [ROOT / "api" / "templates"]
        for path in Path(folder).rglob("*.html")
        for match in inline.finditer(re.sub(r"{% comment %}.*?{% endcomment %}", "", path.read_text(), flags=re.S))
    ]
    assert offenders == []
