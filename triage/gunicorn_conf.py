"""Gunicorn hooks for the desk (Dockerfile CMD and bench/scale_desk.py: ``--config python:triage.gunicorn_conf``).

Why: at a million tickets the queue page allocates enough objects that CPython's oldest
generation collection runs every few requests, and it then walks everything Django and the
apps ever loaded: 70-85 ms, which is the whole gap between the queue's p50 (~46 ms) and its
p95 (~115 ms). Objects that live for the whole process (modules, URL resolvers, compiled
templates, caches filled by the first requests) are moved out of the collector's sight with
``gc.freeze()`` once the worker is warm; request garbage is still collected as before.
"""

from __future__ import annotations

import gc

from triage.env import env_str

# Requests after which a worker has loaded what it keeps for life (templates, resolvers, caches).
WARM_REQUESTS = 20


def post_fork(server, worker):
    gc.freeze()  # what the master had loaded before forking


def post_request(worker, req, environ, resp):
    served = getattr(worker, "triage_served", 0) + 1
    worker.triage_served = served
    if served == WARM_REQUESTS:
        gc.freeze()


# --- Logging ----------------------------------------------------------------------
# gunicorn's own lines (its errors and the access log) in the desk's format, like every other
# line: time, level and logger, or JSON with LOG_FORMAT=json (triage/logformat.py).
_FORMATTER = "triage.logformat." + ("JsonFormatter" if env_str("LOG_FORMAT", "text") == "json" else "TextFormatter")
# gunicorn merges this over its own defaults key by key, so the handler names its defaults
# (and their root logger) refer to are kept, now with the desk's formatter.
_HANDLER = {"class": "logging.StreamHandler", "formatter": "desk", "stream": "ext://sys.stderr"}
logconfig_dict = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"desk": {"()": _FORMATTER}},
    "handlers": {"console": _HANDLER, "error_console": _HANDLER},
    "root": {"handlers": ["console"], "level": "INFO"},
    "loggers": {
        "gunicorn.error": {"handlers": ["error_console"], "level": "INFO", "propagate": False},
        "gunicorn.access": {"handlers": ["console"], "level": "INFO", "propagate": False},
    },
}
