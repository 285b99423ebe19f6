"""Print a report to PDF with Debian's headless Chromium (Playwright), charts as static images.

One browser per process, kept warm: the reports worker starts it when its process starts
(``warm``, from ``worker_process_init`` in reports/tasks.py), any other process with its
first PDF, and every later report reuses it. It holds a chart page with
plotly.js loaded: compiling plotly.min.js is most of a cold start (1.5 s on an idle
2-core machine, 6 s on a busy one), so it is paid once per process, not once per report.
For each report:

1. the print page (``reports/print.html``, no script of its own) is opened from memory at
   a fake origin; any other request is refused, so printing needs no server and never
   reaches the network;
2. each chart's width is measured there and its figure (its ``json_script``) read;
3. the chart page draws each figure once and hands back a PNG of it;
4. the PNGs take the charts' places in the print page, and Chromium prints it.

Playwright's sync API belongs to the thread that started it (and refuses a thread whose
asyncio loop is running: a test's browser, an ASGI worker), so the browser lives on a
thread of its own and reports are handed to it one at a time. A browser that died (crash,
OOM kill) is replaced by the next report, and a report it died under is printed once
more in the new one.
"""

from __future__ import annotations

import atexit
import contextlib
import logging
import os
import queue
import threading
from concurrent.futures import Future
from concurrent.futures import TimeoutError as FutureTimeout
from pathlib import Path
from typing import Any

from django.conf import settings
from django.contrib.staticfiles import finders

log = logging.getLogger(__name__)

ORIGIN = "http://report.shieldwall.invalid"
CHROMIUM_ARGS = ["--no-sandbox", "--headless", "--disable-gpu", "--disable-background-networking"]
VIEWPORT = {"width": 1100, "height": 1400}
PDF_OPTIONS: dict[str, Any] = {
    "format": "A4",
    "print_background": True,
    "margin": {"top": "14mm", "bottom": "16mm", "left": "12mm", "right": "12mm"},
    "display_header_footer": True,
    "header_template": "<span></span>",
    "footer_template": (
        '<div style="font-size:8px;width:100%;text-align:center;color:#666">'
        'Page <span class="pageNumber"></span> of <span class="totalPages"></span></div>'
    ),
}
CHART_PAGE = b'<!doctype html><meta charset="utf-8"><body><script src="/static/plotly/plotly.min.js"></script>'

# In the print page: each chart placeholder's id, measured width and figure.
_READ_CHARTS = """() => [...document.querySelectorAll("[data-chart]")].flatMap((el) => {
  const source = document.getElementById(el.dataset.chart);
  return source ? [{id: el.dataset.chart, width: el.clientWidth || 900, figure: JSON.parse(source.textContent)}] : [];
})"""

# In the chart page: every figure drawn once, as a PNG (data URL), in print colours. The
# result is left on window for wait_for_function, so a chart that never draws times out.
_DRAW_CHARTS = """(charts) => {
  window.__charts = undefined;
  const draw = async (c) => {
    const fig = c.figure, width = c.width, height = (fig.layout && fig.layout.height) || 320;
    const layout = Object.assign({}, fig.layout || {}, {
      width: width, height: height, paper_bgcolor: "#ffffff", plot_bgcolor: "#ffffff",
      font: {color: "#1f2933", size: 12}, margin: {l: 70, r: 70, t: 40, b: 50},
    });
    const el = document.createElement("div");
    document.body.appendChild(el);
    try {
      const gd = await Plotly.newPlot(el, fig.data || [], layout, {staticPlot: true});
      return [c.id, await Plotly.toImage(gd, {format: "png", width: width, height: height, scale: 2})];
    } finally {
      Plotly.purge(el);
      el.remove();
    }
  };
  if (!window.Plotly) { window.__charts = {error: "plotly.js did not load"}; return; }
  Promise.all(charts.map(draw)).then(
    (pairs) => { window.__charts = {images: Object.fromEntries(pairs)}; },
    (error) => { window.__charts = {error: String((error && error.message) || error)}; },
  );
}"""

# In the print page: each placeholder replaced by its image, as the page would have drawn it.
_PLACE_IMAGES = """async ({charts, images}) => {
  const loads = charts.map((c) => {
    const el = document.querySelector(`[data-chart="${CSS.escape(c.id)}"]`);
    const fig = c.figure;
    const img = new Image();
    img.alt = (fig.layout && fig.layout.title && fig.layout.title.text) || "chart";
    img.className = "chart-image";
    img.style.width = c.width + "px";
    img.src = images[c.id];
    el.innerHTML = "";
    el.appendChild(img);
    return img.decode();
  });
  await Promise.all(loads);
}"""


class PdfError(RuntimeError):
    """The PDF could not be printed (no Chromium, a chart that never rendered, a timeout)."""


def _static(path: str) -> str | None:
    found = finders.find(path)
    return str(found) if found else None


def _refuse_all_but(page, pages: dict[str, bytes]) -> None:
    """Serve ``pages`` (path -> HTML) and plotly.js at ORIGIN; refuse every other request."""
    plotly = _static("plotly/plotly.min.js")

    def route(r) -> None:
        url = r.request.url
        path = url[len(ORIGIN) :] if url.startswith(ORIGIN + "/") else None
        if path in pages:
            r.fulfill(status=200, body=pages[path], content_type="text/html; charset=utf-8")
        elif path == "/static/plotly/plotly.min.js" and plotly:
            r.fulfill(status=200, path=plotly, content_type="text/javascript")  # read by the driver, not Python
        elif url.startswith(("data:", "blob:")):
            r.continue_()
        else:
            r.abort()

    page.route("**/*", route)


class _Browser:
    """The process's Chromium and its chart page, owned by one thread (see the module doc)."""

    def __init__(self) -> None:
        self.pid = os.getpid()
        self.launches = 0
        self._jobs: queue.SimpleQueue = queue.SimpleQueue()
        self._thread = threading.Thread(target=self._serve, name="report-pdf", daemon=True)
        self._thread.start()

    def warm(self, timeout_ms: int) -> Future[bytes]:
        """Start Chromium and load the chart page now, without waiting: a report sent meanwhile
        is queued behind it on the browser thread and finds it started."""
        done: Future[bytes] = Future()
        self._jobs.put((None, timeout_ms, done))
        return done

    def print(self, html: str, timeout_ms: int) -> bytes:
        done: Future[bytes] = Future()
        self._jobs.put((html, timeout_ms, done))
        # Each step has its own timeout on the browser thread; this bounds a print that hangs
        # anyway (the reports queue waits behind it) and the reports queued before this one.
        try:
            return done.result(timeout=4 * timeout_ms / 1000)
        except FutureTimeout as exc:
            raise PdfError(f"no PDF after {4 * timeout_ms / 1000:.0f} s") from exc

    @property
    def alive(self) -> bool:
        return self._thread.is_alive()

    def stop(self, timeout: float = 10.0) -> None:
        self._jobs.put(None)
        self._thread.join(timeout)

    # ----------------------------------------------------------------- on the browser thread

    def _serve(self) -> None:
        from playwright.sync_api import Error, TimeoutError, sync_playwright

        playwright = browser = charts = None
        try:
            while (job := self._jobs.get()) is not None:
                html, timeout_ms, done = job
                for attempt in (1, 2):
                    try:
                        if playwright is None:
                            playwright = sync_playwright().start()
                        if browser is None or not browser.is_connected() or charts.is_closed():
                            browser, charts = self._launch(playwright, browser, timeout_ms)
                        # No HTML: a warm-up, done once the browser and its chart page are up.
                        done.set_result(b"" if html is None else _print(browser, charts, html, timeout_ms))
                        break
                    except PdfError as exc:
                        done.set_exception(exc)
                        break
                    except Error as exc:
                        # Whatever state the browser is in, the next report gets a new one.
                        died = not browser or not browser.is_connected() or charts.is_closed()
                        browser = self._close(browser)
                        if attempt == 1 and died and not isinstance(exc, TimeoutError):
                            log.warning("report PDF: Chromium died (%s); starting a new one", exc)
                            continue
                        done.set_exception(PdfError(str(exc)))
                        break
                    except BaseException as exc:  # handed to the caller's thread
                        done.set_exception(exc)
                        break
        finally:
            self._close(browser)
            if playwright is not None:
                playwright.stop()

    def _launch(self, playwright, old, timeout_ms: int):
        self._close(old)
        self.launches += 1
        browser = playwright.chromium.launch(
            executable_path=settings.REPORT_CHROMIUM, headless=True, args=CHROMIUM_ARGS, timeout=timeout_ms
        )
        charts = browser.new_page()
        charts.set_default_timeout(timeout_ms)
        _refuse_all_but(charts, {"/charts": CHART_PAGE})
        charts.goto(f"{ORIGIN}/charts", wait_until="load")
        return browser, charts

    @staticmethod
    def _close(browser) -> None:
        if browser is not None:
            with contextlib.suppress(Exception):  # already gone
                browser.close()


def _print(browser, charts, html: str, timeout_ms: int) -> bytes:
    page = browser.new_page(viewport=VIEWPORT)
    try:
        page.set_default_timeout(timeout_ms)
        errors: list[str] = []
        page.on("pageerror", lambda e: errors.append(str(e)))
        _refuse_all_but(page, {"/report": html.encode()})
        page.goto(f"{ORIGIN}/report", wait_until="load")
        wanted = page.evaluate(_READ_CHARTS)
        if wanted:
            charts.evaluate(_DRAW_CHARTS, wanted)
            charts.wait_for_function("() => window.__charts !== undefined")
            drawn = charts.evaluate("() => window.__charts")
            if drawn.get("error"):
                raise PdfError(f"charts did not render: {drawn['error']}")
            page.evaluate(_PLACE_IMAGES, {"charts": wanted, "images": drawn["images"]})
        if errors:
            raise PdfError(f"charts did not render: {'; '.join(errors)}")
        return page.pdf(**PDF_OPTIONS)
    finally:
        page.close()


_browser: _Browser | None = None
_lock = threading.Lock()


def _the_browser() -> _Browser:
    """This process's browser (a forked worker child starts its own: threads do not survive a fork)."""
    global _browser
    with _lock:
        if _browser is None or _browser.pid != os.getpid() or not _browser.alive:
            _browser = _Browser()
        return _browser


@atexit.register
def _stop() -> None:
    if _browser is not None and _browser.pid == os.getpid():
        _browser.stop()


def warm(*, timeout_ms: int = 60_000) -> Future[bytes] | None:
    """Start this process's Chromium now, on its own thread, so that the first report does not
    pay its start and the plotly.js compile (10 to 28 s on a loaded machine). Returns at once:
    the future is done when the browser is up (None when there is no Chromium). A warm-up that
    fails is logged; the first report then tries again, as without one."""
    if not Path(settings.REPORT_CHROMIUM).exists():
        return None
    done = _the_browser().warm(timeout_ms)

    def report(future: Future[bytes]) -> None:
        if future.exception() is not None:
            log.warning("report PDF: Chromium did not start ahead of the first report: %s", future.exception())

    done.add_done_callback(report)
    return done


def render_pdf(html: str, *, timeout_ms: int = 60_000) -> bytes:
    """The PDF of a complete print page (``reports/print.html``), by this process's warm Chromium."""
    if not Path(settings.REPORT_CHROMIUM).exists():
        raise PdfError(f"no Chromium at {settings.REPORT_CHROMIUM} (set REPORT_CHROMIUM)")
    return _the_browser().print(html, timeout_ms)
