"""The managers' dashboard, first load and return visit, as a deployment serves it.

What runs: compose's path (see sweep_fleet.py): a PostgreSQL database of the bench's own, compose's
``migrate`` command, the Dockerfile's ``collectstatic``, the demo desk (``seed_demo``: 400 tickets over
182 days, rollups refreshed) and gunicorn as the Dockerfile starts it, static files served by
whitenoise (hashed names, gzip, far-future caching). Then headless Chromium (Debian's, through
Playwright) signs in and opens ``/dashboard/``:

- **cold**: a fresh browser context (empty cache), timed from navigation to every chart drawn
  (each chart's ``.main-svg``), with the bytes that came over the network;
- **warm**: the same context opening the dashboard again (what a manager's second visit costs).

The anchor, interleaved in the same run: the same page with plotly.js's full bundle (every trace
type; ``plotly.js-dist-min`` of the same version, fetched with ``npm pack`` into var/bench-cache, put
among the collected static files hashed and gzipped as collectstatic leaves the basic one, and
fetched from gunicorn in the basic bundle's place) instead of the basic bundle the desk ships (bar,
scatter and pie: the only trace types the dashboard draws). Before this bench the desk shipped the
full bundle; the anchor is that page.

    .venv/bin/python bench/dashboard_load.py [--repeat 5]
"""

from __future__ import annotations

import argparse
import gzip
import hashlib
import re
import statistics
import subprocess
import sys
import tarfile
import tempfile
import time
from pathlib import Path

import _lab_setup as bench  # first: puts the repository on sys.path
from sweep_fleet import HOST, Process, compose_commands, free_port, postgres, production_env, wait_for

ROOT = bench.ROOT
PLOTLY_VERSION = "4.1.1"
FULL_PACKAGE = f"plotly.js-dist-min@{PLOTLY_VERSION}"
CACHE = ROOT / "var" / "bench-cache"
PASSWORD = "dashboard-bench-password-1"  # noqa: S105 - the bench's own throwaway admin
LAUNCH = {
    "executable_path": "/usr/bin/chromium",
    "headless": True,
    "args": ["--no-sandbox", "--disable-gpu", "--disable-background-networking"],
}


def full_bundle() -> bytes:
    """plotly.js's full minified bundle, from the npm registry (cached)."""
    path = CACHE / f"plotly-full-{PLOTLY_VERSION}.min.js"
    if not path.exists():
        CACHE.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory() as tmp:
            subprocess.run(  # noqa: S603
                ["npm", "pack", FULL_PACKAGE, "--silent"],  # noqa: S607
                cwd=tmp,
                check=True,
                capture_output=True,
                timeout=300,
            )
            [tgz] = Path(tmp).glob("*.tgz")
            with tarfile.open(tgz) as archive:
                path.write_bytes(archive.extractfile("package/plotly.min.js").read())
    return path.read_bytes()


def load(context, base: str, charts: int) -> tuple[float, int]:
    """Open the dashboard in `context`: seconds until every chart is drawn, bytes over the network."""
    from playwright.sync_api import expect

    page = context.new_page()
    received = []
    page.on("requestfinished", lambda request: received.append(request.sizes()["responseBodySize"]))
    errors = []
    page.on("pageerror", lambda error: errors.append(error))
    started = time.monotonic()
    page.goto(f"{base}/dashboard/")
    # Playwright's own locators (the page's CSP forbids evaluating a string in it): each chart drawn.
    for n in range(charts):
        expect(page.locator(".chart").nth(n).locator(".main-svg").first).to_be_attached(timeout=60_000)
    seconds = time.monotonic() - started
    page.close()
    if errors:
        raise SystemExit(f"bench: the dashboard's scripts failed: {errors}")
    return seconds, sum(received)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeat", type=int, default=5, help="cold and warm loads per side (default 5)")
    args = parser.parse_args()
    from playwright.sync_api import sync_playwright

    anchor = full_bundle()
    print(f"dashboard_load: {bench.machine()}")
    database = f"bench_dashboard_{int(time.time())}"
    postgres(f'CREATE DATABASE "{database}"')
    processes: list[Process] = []
    with tempfile.TemporaryDirectory(prefix="dashboard-bench-") as tmp:
        var_dir = Path(tmp)
        port = free_port()
        env = production_env(
            var_dir=var_dir,
            database=database,
            broker=f"redis://{HOST}:6379/15",
            overrides={
                "TRIAGE_ADMIN_PASSWORD": PASSWORD,
                "ALLOWED_HOSTS": HOST,
                # the browser talks to gunicorn itself, not through the proxy
                "CSRF_TRUSTED_ORIGINS": f"http://{HOST}:{port}",
            },
        )
        env["PATH"] = f"{Path(sys.executable).parent}:{env.get('PATH', '')}"
        commands = compose_commands(web_port=port, var_dir=var_dir)
        try:
            # The demo desk refuses production settings (it makes up customers): it fills the same
            # database under development ones.
            for step, step_env in (
                (commands["migrate"], env),
                ([sys.executable, "manage.py", "collectstatic", "--noinput"], env),
                ([sys.executable, "manage.py", "seed_demo"], {**env, "TRIAGE_ENV": "development"}),
            ):
                done = subprocess.run(  # noqa: S603
                    step,
                    cwd=ROOT,
                    env=step_env,
                    capture_output=True,
                    text=True,
                    timeout=900,
                )
                if done.returncode:
                    what = " ".join(step)[-80:]
                    raise SystemExit(f"bench: {what} failed: {done.stdout[-1500:]}{done.stderr[-1500:]}")
            anchor_url = _install_anchor(var_dir / "static", anchor)
            web = Process("web", commands["web"], env, var_dir / "web.log")
            processes.append(web)
            base = f"http://{HOST}:{port}"
            wait_for(lambda: _answers(base), timeout=60, what="gunicorn", processes=[web])
            with sync_playwright() as playwright:
                # Behind compose's TLS proxy the session cookie is Secure: let this origin keep it.
                browser = playwright.chromium.launch(
                    **{**LAUNCH, "args": [*LAUNCH["args"], f"--unsafely-treat-insecure-origin-as-secure={base}"]}
                )
                results = _measure(browser, base, anchor_url, args.repeat)
                browser.close()
        finally:
            for process in processes:
                process.stop()
            postgres(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)')
    _report(results)
    print(f"end: {bench.machine()}")
    return 0


def _answers(base: str) -> bool:
    import urllib.error
    import urllib.request

    try:
        with urllib.request.urlopen(f"{base}/healthz", timeout=2):  # noqa: S310 - the bench's own server
            return True
    except urllib.error.HTTPError:
        return True  # it answers (503: no worker runs here, and none is needed for the dashboard)
    except OSError:
        return False


def _install_anchor(static_root: Path, bundle: bytes) -> str:
    """The full bundle among the collected static files, hashed and gzipped as collectstatic leaves
    the basic one, so that whitenoise serves it alike (compressed, cached as immutable)."""
    name = f"vendor/plotly-full-{PLOTLY_VERSION}.min.{hashlib.md5(bundle).hexdigest()[:12]}.js"  # noqa: S324
    (static_root / name).write_bytes(bundle)
    (static_root / f"{name}.gz").write_bytes(gzip.compress(bundle, compresslevel=9, mtime=0))
    return f"/static/{name}"


def _signed_in(browser, base: str, *, anchor_url: str | None):
    context = browser.new_context(base_url=base, extra_http_headers={"X-Forwarded-Proto": "https"})
    if anchor_url is not None:  # the page as it was: the full bundle, fetched from gunicorn, in the basic one's place
        context.route(
            re.compile(r".*/static/vendor/plotly-basic-.*\.js$"),
            lambda route: route.continue_(url=f"{base}{anchor_url}"),
        )
    page = context.new_page()
    page.goto("/login/?next=/tickets/")
    page.fill("#id_username", "admin")
    page.fill("#id_password", PASSWORD)
    page.click("main form button[type=submit]")
    page.wait_for_url(re.compile(r".*:[0-9]+/tickets/$"))
    page.close()
    return context


def _measure(browser, base: str, anchor_url: str, repeat: int) -> dict[str, dict[str, list]]:
    results = {side: {"cold": [], "warm": [], "bytes": []} for side in ("ours", "anchor")}
    probe = _signed_in(browser, base, anchor_url=None)
    page = probe.new_page()
    page.goto(f"{base}/dashboard/")
    charts = page.locator(".chart").count()
    if not charts:
        raise SystemExit(f"bench: no chart on {page.url}: {page.content()[:1500]}")
    page.close()
    probe.close()
    for n in range(repeat):
        order = ("ours", "anchor") if n % 2 == 0 else ("anchor", "ours")
        for side in order:
            context = _signed_in(browser, base, anchor_url=anchor_url if side == "anchor" else None)
            cold, sent = load(context, base, charts)
            warm, _ = load(context, base, charts)
            context.close()
            results[side]["cold"].append(cold)
            results[side]["warm"].append(warm)
            results[side]["bytes"].append(sent)
            print(f"repeat {n + 1} {side}: cold {cold:.3f} s ({sent / 1e6:.2f} MB over the network), warm {warm:.3f} s")
    results["charts"] = charts
    return results


def _report(results) -> None:
    print(f"\n{results['charts']} charts; medians over repeats (max in brackets)")
    print(f"{'':44}{'cold s':>16}{'warm s':>16}{'MB (cold)':>12}")
    labels = {"ours": "ours: basic bundle (bar, scatter, pie)", "anchor": "anchor: plotly.js full bundle"}
    for side in ("ours", "anchor"):
        r = results[side]
        print(
            f"{labels[side]:44}{_cell(r['cold']):>16}{_cell(r['warm']):>16}{statistics.median(r['bytes']) / 1e6:>12.2f}"
        )
    ratio = statistics.median(results["ours"]["cold"]) / statistics.median(results["anchor"]["cold"])
    print(f"first load: ours / full bundle = {ratio:.2f}")


def _cell(values) -> str:
    return f"{statistics.median(values):.3f} ({max(values):.3f})"


if __name__ == "__main__":
    raise SystemExit(main())
