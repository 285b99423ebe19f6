"""Print a report to PDF with Debian's headless Chromium (Playwright), charts as static images.

The page is served to the browser from memory through Playwright's request routing: the
report HTML at a fake origin, plotly.js and the print script from the static files. Any
other request is refused, so rendering needs no server and never reaches the network.
The print script draws each chart, swaps it for a PNG of itself and marks the body
ready; then Chromium prints.
"""

from __future__ import annotations

import mimetypes
import threading
from pathlib import Path
from typing import Any

from django.conf import settings
from django.contrib.staticfiles import finders

ORIGIN = "http://report.shieldwall.invalid"
CHROMIUM_ARGS = ["--no-sandbox", "--headless", "--disable-gpu", "--disable-background-networking"]


class PdfError(RuntimeError):
    """The PDF could not be printed (no Chromium, a chart that never rendered, a timeout)."""


def _static(path: str) -> tuple[bytes, str] | None:
    found = finders.find(path)
    if not found:
        return None
    content_type = mimetypes.guess_type(found)[0] or "application/octet-stream"
    return Path(found).read_bytes(), content_type


def _render(html: str, timeout_ms: int, result: dict[str, Any]) -> None:
    from playwright.sync_api import sync_playwright

    def route(r) -> None:  # noqa: ANN001
        url = r.request.url
        if url in (f"{ORIGIN}/", f"{ORIGIN}/report"):
            r.fulfill(status=200, body=html.encode(), content_type="text/html; charset=utf-8")
            return
        if url.startswith(f"{ORIGIN}/static/"):
            found = _static(url[len(f"{ORIGIN}/static/") :].split("?")[0])
            if found:
                r.fulfill(status=200, body=found[0], content_type=found[1])
                return
        if url.startswith("data:") or url.startswith("blob:"):
            r.continue_()
            return
        r.abort()

    try:
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=settings.REPORT_CHROMIUM, headless=True, args=CHROMIUM_ARGS)
            try:
                page = browser.new_page(viewport={"width": 1100, "height": 1400})
                errors: list[str] = []
                page.on("pageerror", lambda e: errors.append(str(e)))
                page.route("**/*", route)
                page.goto(f"{ORIGIN}/report", wait_until="load", timeout=timeout_ms)
                page.wait_for_selector("body[data-charts-ready]", state="attached", timeout=timeout_ms)
                failed = page.get_attribute("body", "data-charts-error")
                if failed or errors:
                    raise PdfError(f"charts did not render: {failed or '; '.join(errors)}")
                result["pdf"] = page.pdf(
                    format="A4",
                    print_background=True,
                    margin={"top": "14mm", "bottom": "16mm", "left": "12mm", "right": "12mm"},
                    display_header_footer=True,
                    header_template="<span></span>",
                    footer_template=(
                        '<div style="font-size:8px;width:100%;text-align:center;color:#666">'
                        'Page <span class="pageNumber"></span> of <span class="totalPages"></span></div>'
                    ),
                )
            finally:
                browser.close()
    except BaseException as exc:  # noqa: BLE001 - handed to the caller's thread
        result["error"] = exc


def render_pdf(html: str, *, timeout_ms: int = 60_000) -> bytes:
    """The PDF of a complete print page (``reports/print.html``).

    Runs in a thread of its own: Playwright's sync API refuses a thread whose asyncio
    loop is running (a test's browser, an ASGI worker).
    """
    if not Path(settings.REPORT_CHROMIUM).exists():
        raise PdfError(f"no Chromium at {settings.REPORT_CHROMIUM} (set REPORT_CHROMIUM)")
    result: dict[str, Any] = {}
    thread = threading.Thread(target=_render, args=(html, timeout_ms, result), name="report-pdf")
    thread.start()
    thread.join()
    if "error" in result:
        error = result["error"]
        raise error if isinstance(error, PdfError) else PdfError(str(error)) from error
    return result["pdf"]
