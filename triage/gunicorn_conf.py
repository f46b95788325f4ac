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

# Requests after which a worker has loaded what it keeps for life (templates, resolvers, caches).
WARM_REQUESTS = 20


def post_fork(server, worker):
    gc.freeze()  # what the master had loaded before forking


def post_request(worker, req, environ, resp):
    served = getattr(worker, "triage_served", 0) + 1
    worker.triage_served = served
    if served == WARM_REQUESTS:
        gc.freeze()
