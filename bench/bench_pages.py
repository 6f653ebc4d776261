"""The core pages of issue 7 under an emulated slow network: for each page
of `tests.core_pages.CORE_PAGES` (the same list the browser tests check),
the time from navigation start until the page is usable — its `ready`
selector visible and the load event fired (document, CSS and scripts in) —
with Chromium DevTools throttling at 400 kbit/s and a 400 ms round trip,
next to the same page with throttling off, measured in the same run.

Every measurement starts from an empty cache (a new browser context, signed
in with the session cookie of the page's person). The figure is the median
of BENCH_PAGES_RUNS (5) throttled loads; the baseline the median of as many
unthrottled ones. Printed beside it: the requests sent before the page
was usable and their bytes on the wire (the sum of Chromium's
encodedDataLength: headers and bodies as sent, compressed or not).
BENCH_PAGES_WATERFALL=1 prints every page's request waterfall, throttled and
not, of the load nearest the median (the throttled one is always printed
for a page that misses the goal).

The portal runs as in production: a real daphne on a fresh SQLite database
of its own, with `collectstatic` run first, so that WhiteNoise serves the
CSS and scripts from STATIC_ROOT with their gzip copies."""

import dataclasses
import json
import os
import subprocess
import sys
import time
from typing import Any

from bench.core import BENCH_DIR, ROOT, Daphne, Result, Services, bench_environment, child_json, median

GOAL_MS = 3000.0
LATENCY_MS = 400  # DevTools' "latency": the round-trip time added to each request
THROUGHPUT = 400_000 / 8  # 400 kbit/s in bytes per second, both ways (DevTools' own definition)
SLOW_NETWORK = {
    "offline": False,
    "latency": LATENCY_MS,
    "downloadThroughput": THROUGHPUT,
    "uploadThroughput": THROUGHPUT,
}
TIMEOUT_MS = 30_000

# Installed before the page's own scripts: at every animation frame (there
# is none before the first paint, which waits for render-blocking CSS) it
# looks for the selector on a rendered, visible element — Playwright's
# meaning of "visible": a non-empty box, not visibility:hidden — and notes
# the page's clock (ms since navigation start) the first time it is there.
READY_WATCH = """(() => {
  if (window.top !== window) return;
  const selector = %s;
  const look = () => {
    const element = document.querySelector(selector);
    if (element) {
      const box = element.getBoundingClientRect();
      if (box.width && box.height && getComputedStyle(element).visibility !== "hidden") {
        window.__benchReadyAt = performance.now();
        return;
      }
    }
    requestAnimationFrame(look);
  };
  requestAnimationFrame(look);
})();"""

# The page's own view of its loading: the navigation and every resource,
# with Chromium's render-blocking status, times relative to navigation start.
TIMINGS = """() => {
  const navigation = performance.getEntriesByType("navigation")[0];
  return {
    redirects: navigation.redirectCount,
    response_start: navigation.responseStart,
    response_end: navigation.responseEnd,
    dom_content_loaded: navigation.domContentLoadedEventEnd,
    load: navigation.loadEventEnd,
    resources: performance.getEntriesByType("resource").map((entry) => ({
      url: entry.name,
      type: entry.initiatorType,
      start: entry.startTime,
      end: entry.responseEnd,
      blocking: entry.renderBlockingStatus || "",
    })),
  };
}"""


@dataclasses.dataclass
class Load:
    usable_ms: float
    ready_ms: float
    load_ms: float
    # The waterfall as the network saw it, in order: "start" and "end" in ms
    # from the document's request, "bytes" on the wire (headers and the
    # body as sent, compressed or not).
    requests: list[dict[str, Any]]
    timings: dict[str, Any]  # the page's own view (Navigation and Resource Timing)

    @property
    def needed(self) -> list[dict[str, Any]]:
        """The requests sent before the page was usable (not the icon the
        browser asks for afterwards)."""
        return [entry for entry in self.requests if entry["start"] <= self.usable_ms]

    @property
    def transferred(self) -> int:
        return sum(entry["bytes"] for entry in self.needed)


def runs() -> int:
    return max(1, int(os.environ.get("BENCH_PAGES_RUNS", "5")))


def _environment() -> dict[str, str]:
    environment = bench_environment()
    # A fresh SQLite database of its own each run, even with
    # BENCH_DATABASE_URL: the core pages' world is made anew each time (and
    # other benchmarks may be using theirs meanwhile).
    environment.pop("DATABASE_URL", None)
    environment["SQLITE_PATH"] = str(BENCH_DIR / "bench-pages.sqlite3")
    if "REDIS_URL" not in os.environ:
        environment["EMBEDDED_REDIS_SOCKET_TEST"] = str(BENCH_DIR / "redis-pages.sock")
    environment["STATIC_ROOT"] = str(BENCH_DIR / "static-pages")
    return environment


def _fresh_database(environment: dict[str, str]) -> None:
    for suffix in ("", "-wal", "-shm", "-journal"):
        if os.path.exists(environment["SQLITE_PATH"] + suffix):
            os.remove(environment["SQLITE_PATH"] + suffix)


def run() -> list[Result]:
    from playwright.sync_api import sync_playwright

    from conftest import CHROMIUM, CHROMIUM_ARGS
    from tests.live import free_port

    if not os.path.exists(CHROMIUM):
        raise RuntimeError("Debian's chromium is required: make browser (never a downloaded browser)")
    environment = _environment()
    _fresh_database(environment)
    services = Services(environment)
    server = None
    try:
        subprocess.run(
            [sys.executable, "manage.py", "collectstatic", "--noinput", "-v", "0"],
            cwd=ROOT,
            env=environment,
            check=True,
        )
        server = Daphne(environment, free_port())
        pages = child_json("bench.bench_pages", environment, "seed", server.url)["pages"]
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
            try:
                return _measure_all(browser, server.url, pages)
            finally:
                browser.close()
    finally:
        if server is not None:
            server.stop()
        services.close()


def _measure_all(browser: Any, base_url: str, pages: list[dict]) -> list[Result]:
    started = time.monotonic()
    print(
        f"  {len(pages)} core pages, {runs()} loads each with throttling ({LATENCY_MS} ms round trip, "
        f"{THROUGHPUT * 8 / 1000:.0f} kbit/s) and without, empty cache each time; load average "
        f"{os.getloadavg()[0]:.1f}",
        flush=True,
    )
    for page in pages:  # warm-up: the server's first render of each page
        _load(browser, base_url, page, throttled=False)
    fast: dict[str, list[Load]] = {page["name"]: [] for page in pages}
    slow: dict[str, list[Load]] = {page["name"]: [] for page in pages}
    for _ in range(runs()):
        for page in pages:  # interleaved, so that a busy moment hits both alike
            fast[page["name"]].append(_load(browser, base_url, page, throttled=False))
            slow[page["name"]].append(_load(browser, base_url, page, throttled=True))
    waterfalls = os.environ.get("BENCH_PAGES_WATERFALL", "") not in ("", "0")
    results = []
    for page in pages:
        name = page["name"]
        value = median([load.usable_ms for load in slow[name]])
        baseline = median([load.usable_ms for load in fast[name]])
        typical = _typical(slow[name], value)
        print(
            f"  {name:22} throttled {value:7.0f} ms (runs {_spread(slow[name])}); "
            f"unthrottled {baseline:5.0f} ms; {len(typical.needed)} requests, "
            f"{typical.transferred / 1024:.1f} KB transferred, {typical.timings['redirects']} redirects",
            flush=True,
        )
        if waterfalls or value > GOAL_MS:
            _print_waterfall("throttled", typical)
        if waterfalls:
            _print_waterfall("unthrottled", _typical(fast[name], baseline))
        results.append(
            Result(
                f"pages.{name}_slow_load",
                value,
                "ms",
                baseline,
                f"≤ {GOAL_MS:.0f} ms under 400 kbit/s, {LATENCY_MS} ms RTT",
                value <= GOAL_MS,
            )
        )
    print(f"  measured in {time.monotonic() - started:.0f} s", flush=True)
    return results


def _typical(loads: list[Load], value: float) -> Load:
    return min(loads, key=lambda load: abs(load.usable_ms - value))


def _spread(loads: list[Load]) -> str:
    times = sorted(load.usable_ms for load in loads)
    return f"{times[0]:.0f}–{times[-1]:.0f}" if len(times) > 1 else f"{times[0]:.0f}"


def _load(browser: Any, base_url: str, page_spec: dict, *, throttled: bool) -> Load:
    context = browser.new_context(locale="ru-RU", viewport={"width": 1280, "height": 900})
    try:
        if page_spec.get("cookie"):
            context.add_cookies([page_spec["cookie"]])
        page = context.new_page()
        page.add_init_script(READY_WATCH % json.dumps(page_spec["ready"]))
        network = context.new_cdp_session(page)
        requests: dict[str, dict[str, Any]] = {}

        def sent(event: dict) -> None:
            entry = requests.setdefault(event["requestId"], {"bytes": 0})
            if event.get("redirectResponse"):
                # The same request id goes on after a redirect: keep the hop.
                hop = dict(entry, status=event["redirectResponse"]["status"], end=event["timestamp"])
                requests[event["requestId"] + "/" + str(len(requests))] = hop
                entry = requests[event["requestId"]] = {"bytes": 0}
            entry.update(url=event["request"]["url"], type=event.get("type", ""), start=event["timestamp"])

        def received(event: dict) -> None:
            entry = requests.setdefault(event["requestId"], {"bytes": 0})
            entry.update(status=event["response"]["status"], encoding=_header(event["response"], "content-encoding"))

        def finished(event: dict) -> None:
            entry = requests.setdefault(event["requestId"], {"bytes": 0})
            entry.update(bytes=int(event["encodedDataLength"]), end=event["timestamp"])

        def failed(event: dict) -> None:
            entry = requests.setdefault(event["requestId"], {"bytes": 0})
            entry.update(failed=event.get("errorText", "failed"), end=event["timestamp"])

        network.on("Network.requestWillBeSent", sent)
        network.on("Network.responseReceived", received)
        network.on("Network.loadingFinished", finished)
        network.on("Network.loadingFailed", failed)
        network.send("Network.enable")
        if throttled:
            network.send("Network.emulateNetworkConditions", SLOW_NETWORK)
        page.goto(base_url + page_spec["path"], wait_until="commit", timeout=TIMEOUT_MS)
        page.wait_for_load_state("load", timeout=TIMEOUT_MS)
        page.wait_for_function("() => window.__benchReadyAt !== undefined", polling=50, timeout=TIMEOUT_MS)
        ready_ms = float(page.evaluate("window.__benchReadyAt"))
        timings = page.evaluate(TIMINGS)
        load_ms = float(timings["load"])
        final_url = page.url
    finally:
        context.close()
    if not final_url.startswith(base_url + page_spec["path"].split("?")[0]):
        raise RuntimeError(f"{page_spec['name']}: {page_spec['path']} ended at {final_url}")
    waterfall = sorted((entry for entry in requests.values() if "start" in entry), key=lambda entry: entry["start"])
    origin = waterfall[0]["start"] if waterfall else 0.0
    for entry in waterfall:
        entry["start"], entry["end"] = (
            (entry["start"] - origin) * 1000,
            (entry.get("end", entry["start"]) - origin) * 1000,
        )
    return Load(
        usable_ms=max(ready_ms, load_ms), ready_ms=ready_ms, load_ms=load_ms, requests=waterfall, timings=timings
    )


def _header(response: dict, name: str) -> str:
    for key, value in response.get("headers", {}).items():
        if key.lower() == name:
            return str(value)
    return ""


def _print_waterfall(label: str, load: Load) -> None:
    timings = load.timings
    print(
        f"    {label}: ready {load.ready_ms:.0f} ms, load event {load.load_ms:.0f} ms; document: first byte "
        f"{timings['response_start']:.0f} ms, last byte {timings['response_end']:.0f} ms, "
        f"DOMContentLoaded {timings['dom_content_loaded']:.0f} ms",
        flush=True,
    )
    blocking = {entry["url"]: entry["blocking"] for entry in timings["resources"]}
    for entry in load.requests:
        notes = [entry.get("type", "").lower(), str(entry.get("status", entry.get("failed", "?")))]
        if entry.get("encoding"):
            notes.append(entry["encoding"])
        if blocking.get(entry["url"]) == "blocking":
            notes.append("render-blocking")
        if entry["start"] > load.usable_ms:
            notes.append("after usable")
        path = "/" + entry["url"].split("//", 1)[-1].split("/", 1)[-1]
        timing = f"{entry['start']:6.0f} → {entry['end']:6.0f} ms"
        print(f"    {timing}  {entry['bytes'] / 1024:6.1f} KB  {path[:70]}  ({', '.join(notes)})", flush=True)


def _seed(base_url: str) -> None:
    """In the child process: the core pages' world in the bench database,
    and for each page its path, ready selector and the session cookie of
    its person, as JSON on the last line."""
    import django

    django.setup()
    from tests.core_pages import CORE_PAGES, core_world, session_cookie

    world = core_world()
    pages = []
    for page in CORE_PAGES:
        person = page.user(world)
        cookie = session_cookie(person, url=base_url) if person is not None else None
        pages.append({"name": page.name, "path": page.path(world), "ready": page.ready, "cookie": cookie})
    print(json.dumps({"pages": pages}))


if __name__ == "__main__":
    if sys.argv[1:2] == ["seed"]:
        _seed(sys.argv[2])
