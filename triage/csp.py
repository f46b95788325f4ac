"""A Content-Security-Policy header on every response (Django 5.2 has none built in).

The policy (settings.CONTENT_SECURITY_POLICY) allows scripts and styles from the site itself
only: no inline script, no inline style, no eval. The templates keep to it: behaviour lives in
static files (htmx, plotly, reports/dashboard.js), data in json_script blocks, bars in native
<progress>/<meter> elements; htmx's own injected indicator style is turned off in base.html.
It is outermost in MIDDLEWARE so WhiteNoise's static responses carry it too.
"""

from __future__ import annotations

from django.conf import settings
from django.http import HttpRequest, HttpResponse

HEADER = "Content-Security-Policy"


class ContentSecurityPolicyMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        response = self.get_response(request)
        if settings.CONTENT_SECURITY_POLICY:
            response.headers.setdefault(HEADER, settings.CONTENT_SECURITY_POLICY)
        return response
