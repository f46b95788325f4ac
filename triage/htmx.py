"""``request.htmx`` for views that answer a page or a fragment of it, with the two things django-htmx leaves to us.

- A history restore (htmx re-fetching a page it had not cached, ``HX-History-Restore-Request: true``) also says
  ``HX-Request: true`` but swaps what it gets in as the whole body: it must get the full page. Here
  ``request.htmx`` is false for it, so every ``template = fragment if request.htmx else page`` view answers the
  page without knowing about restores.
- A response chosen by ``request.htmx`` differs by those headers: a browser or proxy cache that kept the fragment
  under the page's URL would show a bare fragment on Back. Every response whose view looked at
  ``request.htmx`` says ``Vary: HX-Request, HX-History-Restore-Request``; the others are left alone.
"""

from __future__ import annotations

from django.http import HttpRequest
from django.http.response import HttpResponseBase
from django.utils.cache import patch_vary_headers
from django_htmx.middleware import HtmxDetails

VARY = ("HX-Request", "HX-History-Restore-Request")


class FragmentDetails(HtmxDetails):
    """True when the request wants a fragment: an htmx request that is not a history restore."""

    def __init__(self, request: HttpRequest) -> None:
        super().__init__(request)
        self.consulted = False  # whether the view chose its answer by it

    def __bool__(self) -> bool:
        self.consulted = True
        return super().__bool__() and not self.history_restore_request


class HtmxHttpRequest(HttpRequest):
    """A request as views see it behind HtmxMiddleware, for type checking (django-htmx's recommended pattern)."""

    htmx: FragmentDetails


class HtmxMiddleware:
    """Replaces django-htmx's middleware (same ``request.htmx``, see the module docstring)."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponseBase:
        request.htmx = details = FragmentDetails(request)  # type: ignore[attr-defined]  # what HtmxHttpRequest declares
        response = self.get_response(request)
        if details.consulted:
            patch_vary_headers(response, VARY)
        return response
