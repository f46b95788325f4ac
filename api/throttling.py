"""Rate limits: DRF throttles for the API, and a limiter on the browser's login form.

Counters live in Django's cache. With the default per-process cache each server
process counts for itself; a shared cache (Redis) makes the limits global.
"""

from __future__ import annotations

import hashlib
import math
import time

from django.conf import settings
from django.core.cache import cache
from django.http import HttpRequest, HttpResponse
from rest_framework.settings import api_settings
from rest_framework.throttling import BaseThrottle, SimpleRateThrottle, UserRateThrottle


class _LiveRates:
    """Read the rate when asked, not at import, so a changed setting takes effect."""

    def get_rate(self):
        return api_settings.DEFAULT_THROTTLE_RATES.get(self.scope)


class ApiUserThrottle(_LiveRates, UserRateThrottle):
    """Every API request, per user (per address for anonymous requests)."""

    scope = "api"


class TokenThrottle(_LiveRates, SimpleRateThrottle):
    """Password logins and token creation, per address: guessing passwords stays slow."""

    scope = "token"

    def get_cache_key(self, request, view):
        return self.cache_format % {"scope": self.scope, "ident": self.get_ident(request)}

    def allow_request(self, request, view):
        # Only the writes: listing one's tokens is an ordinary request.
        if request.method in ("GET", "HEAD", "OPTIONS"):
            return True
        return super().allow_request(request, view)


def _client_address(request: HttpRequest) -> str:
    # DRF's rule, so the login form and the API agree on who a client is (NUM_PROXIES).
    return BaseThrottle().get_ident(request)


def _login_key(kind: str, value: str) -> str:
    return "login-limit:" + kind + ":" + hashlib.sha256(value.encode()).hexdigest()


def rate_limited_login(view):
    """Wrap a login view: too many failed logins for one address and user name, or from one
    address in total, within the window answer 429 with Retry-After until the window passes.

    A failed login is a POST answered with the form again (200); a success (a redirect)
    clears the counter for that user name.
    """

    def wrapped(request: HttpRequest, *args, **kwargs) -> HttpResponse:
        if request.method != "POST":
            return view(request, *args, **kwargs)
        window = settings.TRIAGE_LOGIN_WINDOW_SECONDS
        address = _client_address(request)
        username = str(request.POST.get("username", "")).strip().lower()[:150]
        keys = [
            (_login_key("user", f"{address}|{username}"), settings.TRIAGE_LOGIN_ATTEMPTS),
            (_login_key("address", address), settings.TRIAGE_LOGIN_ATTEMPTS_PER_ADDRESS),
        ]
        now = time.time()
        for key, limit in keys:
            started, failures = cache.get(key, (now, 0))
            if failures >= limit and now - started < window:
                response = HttpResponse(
                    "Too many failed sign-in attempts. Try again later.", status=429, content_type="text/plain"
                )
                response["Retry-After"] = str(max(1, math.ceil(window - (now - started))))
                return response
        response = view(request, *args, **kwargs)
        if response.status_code == 200:  # the form again: a failed attempt
            for key, _ in keys:
                started, failures = cache.get(key, (now, 0))
                if now - started >= window:
                    started, failures = now, 0
                cache.set(key, (started, failures + 1), timeout=window)
        elif response.status_code in (301, 302, 303):
            cache.delete(keys[0][0])
        return response

    return wrapped
