"""The gunicorn hooks: a warm worker moves its long-lived objects out of the collector's sight."""

from __future__ import annotations

import gc
import subprocess
import sys
import textwrap

from triage import gunicorn_conf


def test_a_worker_freezes_its_objects_once_warm_and_not_before():
    script = textwrap.dedent(f"""
        import gc, types
        from triage import gunicorn_conf as conf
        worker = types.SimpleNamespace()
        for served in range(1, conf.WARM_REQUESTS):
            conf.post_request(worker, None, {{}}, None)
        before = gc.get_freeze_count()
        conf.post_request(worker, None, {{}}, None)
        print(before, gc.get_freeze_count() > 0, worker.triage_served == {gunicorn_conf.WARM_REQUESTS})
    """)
    # Its own interpreter: freezing the test process would hide its garbage from the collector.
    out = subprocess.run(
        [sys.executable, "-c", script],
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
        cwd=gunicorn_conf.__file__.rsplit("/triage/", 1)[0],
    ).stdout.split()
    assert out == ["0", "True", "True"]
    assert gc.get_freeze_count() == 0
