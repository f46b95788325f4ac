"""Rate limits: DRF throttles for the API, and a limiter on the browser's login form.

Counters live in Django's cache, which must be shared by every server process (Redis in
production, triage/cache_config.py), and are incremented atomically (count_attempt).
Clients are told apart by address: REMOTE_ADDR, or behind TRIAGE_TRUSTED_PROXIES proxies
the X-Forwarded-For entry the nearest trusted proxy appended.
"""

from __future__ import annotations

import contextlib
import hashlib
import math
import time

from django.conf import settings
from django.core.cache import cache
from django.http import HttpRequest, HttpResponse
from rest_framework.settings import api_settings
from rest_framework.throttling import BaseThrottle, SimpleRateThrottle, UserRateThrottle


def count_attempt(key: str, *, window: int, now: float) -> tuple[int, int]:
    """Count one attempt against `key`: (attempts in the current window, this one included; whole
    seconds until that window ends). A window opens at the first attempt and lasts `window` seconds.

    add + incr, never get-then-set: on Redis they are SET NX and INCR, so concurrent requests in
    different worker processes each get their own number and none of them reads a stale count.
    """
    cache.add(key, 0, timeout=window)  # opens a window; a no-op while one is open
    try:
        count = cache.incr(key)
    except ValueError:  # the window closed between the two calls
        cache.add(key, 0, timeout=window)
        count = cache.incr(key)
    if count == 1:
        # Django's Redis incr checks EXISTS then INCRs: a key that expired in between comes back
        # from INCR without an expiry, so the first attempt of a window (re)sets it.
        cache.touch(key, window)
        cache.set(key + ":since", now, timeout=window)
        return 1, window
    since = cache.get(key + ":since", now)
    return count, max(1, math.ceil(window - (now - since)))


class _AtomicRate(SimpleRateThrottle):
    """DRF's rate throttles with a counter per window (count_attempt) instead of DRF's history list,
    which is read, appended to and written back: two workers could both pass the last free slot.
    The rate is read when asked, not at import, so a changed setting takes effect."""

    scope: str  # every throttle names its own
    # Set by SimpleRateThrottle.__init__ from the rate, which allow_request checks is set.
    duration: int
    num_requests: int

    def get_rate(self):
        return api_settings.DEFAULT_THROTTLE_RATES.get(self.scope)

    def allow_request(self, request, view):
        if self.rate is None:
            return True
        self.key = self.get_cache_key(request, view)
        if self.key is None:
            return True
        count, self.seconds_left = count_attempt(self.key, window=self.duration, now=self.timer())
        return count <= self.num_requests

    def wait(self):
        return self.seconds_left


class ApiUserThrottle(_AtomicRate, UserRateThrottle):
    """Every API request, per user (per address for anonymous requests)."""

    scope = "api"


class TokenThrottle(_AtomicRate, SimpleRateThrottle):
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
    return BaseThrottle().get_ident(request)  # type: ignore[arg-type]  # reads only META, which a Django request has


def _login_key(kind: str, value: str) -> str:
    return "login-limit:" + kind + ":" + hashlib.sha256(value.encode()).hexdigest()


def _too_many(seconds_left: int) -> HttpResponse:
    response = HttpResponse("Too many failed sign-in attempts. Try again later.", status=429, content_type="text/plain")
    response["Retry-After"] = str(seconds_left)
    return response


def rate_limited_login(view):
    """Wrap a login view: too many failed logins for one address and user name, or from one
    address in total, within the window answer 429 with Retry-After until the window passes.

    Every POST that reaches the form counts as an attempt before the password is checked, so
    concurrent guesses cannot all slip under the limit; a success (a redirect) clears the user
    name's counter and gives the address its attempt back.
    """

    def wrapped(request: HttpRequest, *args, **kwargs) -> HttpResponse:
        if request.method != "POST":
            return view(request, *args, **kwargs)
        window = settings.TRIAGE_LOGIN_WINDOW_SECONDS
        address = _client_address(request)
        username = str(request.POST.get("username", "")).strip().lower()[:150]
        user_key = _login_key("user", f"{address}|{username}")
        address_key = _login_key("address", address)
        now = time.time()
        for key, limit in (
            (user_key, settings.TRIAGE_LOGIN_ATTEMPTS),
            (address_key, settings.TRIAGE_LOGIN_ATTEMPTS_PER_ADDRESS),
        ):
            attempts, seconds_left = count_attempt(key, window=window, now=now)
            if attempts > limit:
                return _too_many(seconds_left)
        response = view(request, *args, **kwargs)
        if response.status_code in (301, 302, 303):  # signed in: not a failure
            cache.delete_many([user_key, user_key + ":since"])
            with contextlib.suppress(ValueError):  # the window may have closed meanwhile
                cache.decr(address_key)
        return response

    return wrapped
