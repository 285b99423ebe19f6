"""Nobody in: a hostile corpus in every attacker-controlled field, and every page opened in Chromium.

The corpus (tests/security/hostile.py) goes in through the real entry points: the webhook of
every feed format, traffic samples parsed by the upload service, ticket text, customer
messages, mitigations, lists, silences, saved views, and the reports built from all of it.
Then every page of the URL conf is opened with the planted objects' ids, as an admin, as the
customer's viewer and anonymously (the share link), together with the htmx fragments the
pages poll, the exports and the PDF. After each load no ``window.__pwned_*`` marker may be
set, no Content-Security-Policy violation reported, no script error raised, no template probe
evaluated, and the page must answer as expected (a 500 on hostile data is a failure).
"""

from __future__ import annotations

import shutil
import subprocess
import time
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote, urlsplit

import pytest
from django.urls import NoReverseMatch, get_resolver, reverse

from console import roles
from tests.browser.support import PageProblems, login
from tests.factories import UserFactory
from tests.security import hostile
from tests.security.test_isolation_matrix import BUILDERS, IGNORED_ARGS, _walk
from tests.shared import report_figures

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

MARKERS_JS = "() => Object.keys(window).filter(k => k.startsWith('__pwned'))"
# Chromium's own refusal of a download is not a page problem.
DOWNLOAD = "Download is starting"
# Not pages: the webhook (POST with a bearer token), the session's own exits, and the schema download.
# Login steps (the enrolment link is single-use, tested in tests/browser/test_two_factor.py).
NOT_PAGES = {"ingest", "logout", "login", "two-factor", "two-factor-enrol", "two-factor-new-device", "api-schema"}
# URL kwargs the isolation matrix's builders do not give: the public share pages take a token,
# and a waf rule has no packet-filter export (the matrix asks for nftables).
SWEEP_BUILDERS = {
    "report-share-view": lambda w: {"token": w.share_token},
    "report-share-download": lambda w: {"token": w.share_token, "kind": "csv"},
    "mitigation-export": lambda w: {"pk": w.mitigation.pk, "fmt": "cloudflare"},
}
# Pages that compare two samples need the second one in the query.
SWEEP_QUERIES = {
    "traffic-compare": lambda w: f"?baseline={w.baseline_sample.pk}",
    "api:trafficsample-compare": lambda w: f"?baseline={w.baseline_sample.pk}",
}
# Admin pages of the objects attackers write to (the rest of the admin is staff-only configuration).
ADMIN_PAGES = [
    "admin:console_customer_changelist",
    "admin:console_auditevent_changelist",
    "admin:tickets_ticket_changelist",
    "admin:traffic_trafficsample_changelist",
    "admin:mitigations_mitigation_changelist",
]


@dataclass
class Tally:
    pages: list[str] = field(default_factory=list)
    fragments: list[str] = field(default_factory=list)
    exports: list[str] = field(default_factory=list)
    interactions: list[str] = field(default_factory=list)
    post_only: list[str] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)
    literal_probes: set[str] = field(default_factory=set)


class Network:
    """Requests in flight on a page: Playwright's "networkidle" waits a fixed 500 ms, too long for hundreds of pages."""

    def __init__(self, page: Any) -> None:
        self.pending: set[Any] = set()
        page.on("request", lambda request: self.pending.add(request))
        page.on("requestfinished", lambda request: self.pending.discard(request))
        page.on("requestfailed", lambda request: self.pending.discard(request))

    def settle(self, page: Any, quiet_ms: int = 150, timeout_ms: int = 10_000) -> None:
        """Until nothing has been in flight for ``quiet_ms`` (htmx "load" fragments, images a payload asks for)."""
        deadline = time.monotonic() + timeout_ms / 1000
        quiet_since = None
        while time.monotonic() < deadline:
            if self.pending:
                quiet_since = None
            elif quiet_since is None:
                quiet_since = time.monotonic()
            elif time.monotonic() - quiet_since >= quiet_ms / 1000:
                return
            page.wait_for_timeout(25)


class Visitor:
    """Opens URLs in the test's page and checks what an attacker's payload could have done."""

    def __init__(self, page: Any, problems: PageProblems, base: str, tally: Tally, who: str, network: Network) -> None:
        self.page, self.problems, self.base, self.tally, self.who = page, problems, base, tally, who
        self.network = network

    def settle(self) -> None:
        self.network.settle(self.page)

    def check(self, where: str) -> None:
        try:
            markers = self.page.evaluate(MARKERS_JS)
        except Exception as exc:  # a page that cannot even be evaluated is a failure too
            markers = [f"(evaluate failed: {exc})"]
        if markers:
            self.tally.failures.append(f"{self.who} {where}: script ran, markers {markers}")
        try:
            html = self.page.content()
        except Exception:  # a download has no document
            html = ""
        evaluated = [probe for probe in hostile.EVALUATED if probe in html]
        if evaluated:
            self.tally.failures.append(f"{self.who} {where}: template probe evaluated {evaluated}")
        for probe in hostile.TEMPLATE_PROBES:
            if probe.replace("<", "&lt;").replace(">", "&gt;") in html or probe in html:
                self.tally.literal_probes.add(probe)
        problems = [p for p in self.problems.all() if DOWNLOAD not in p and "favicon" not in p]
        if problems:
            self.tally.failures.append(f"{self.who} {where}:\n    " + "\n    ".join(problems[:8]))
        self.problems.clear()

    def status(self, url: str, headers: dict[str, str] | None = None) -> tuple[int, dict[str, str], bytes]:
        response = self.page.request.get(self.base + url, headers=headers or {}, max_redirects=0, timeout=30_000)
        return response.status, response.headers, response.body()

    def open(self, url: str, *, bucket: list[str], headers: dict[str, str] | None = None) -> None:
        if headers:
            self.page.set_extra_http_headers(headers)
        try:
            response = self.page.goto(self.base + url, wait_until="load")
            self.settle()
            if response is not None and response.status >= 400:
                self.tally.failures.append(f"{self.who} {url}: answered {response.status} in the browser")
        except Exception as exc:
            if DOWNLOAD not in str(exc):
                self.tally.failures.append(f"{self.who} {url}: {str(exc).splitlines()[0]}")
        finally:
            if headers:
                self.page.set_extra_http_headers({})
        bucket.append(url)
        self.check(url)

    def export(self, url: str, *, csv: bool = False) -> None:
        """A download: not HTML, not sniffable, formulas neutralised, and opening it runs nothing."""
        status, headers, body = self.status(url)
        where = f"{self.who} export {url}"
        if status != 200:
            self.tally.failures.append(f"{where}: {status}")
            return
        content_type = headers.get("content-type", "")
        if content_type.startswith("text/html"):
            self.tally.failures.append(f"{where}: served as {content_type}")
        if headers.get("x-content-type-options") != "nosniff":
            self.tally.failures.append(f"{where}: no X-Content-Type-Options: nosniff")
        if csv or content_type.startswith("text/csv"):
            bad = hostile.formula_cells(body.decode("utf-8", "replace"))
            if bad:
                self.tally.failures.append(f"{where}: formula cells {bad[:5]}")
        if headers.get("content-disposition", "").startswith("attachment"):
            # The browser saves an attachment without rendering it (and aborts the navigation): nothing to run.
            self.tally.exports.append(url)
            return
        self.open(url, bucket=self.tally.exports)


def _url_plan(world: Any) -> tuple[list[str], list[str]]:
    """Every page of the URL conf with the planted ids filled in, and the names it could not build."""
    urls, unbuilt = [], []
    seen = set()
    for name, _route, args in _walk(get_resolver().url_patterns):
        if name in NOT_PAGES or name.split(":")[0] == "admin" or args & IGNORED_ARGS or name in seen:
            continue
        seen.add(name)
        try:
            kwargs = (SWEEP_BUILDERS.get(name) or BUILDERS[name])(world) if args else {}
            url = reverse(name, kwargs=kwargs)
        except (KeyError, NoReverseMatch) as exc:
            unbuilt.append(f"{name}: {exc!r}")
            continue
        urls.append(url + (SWEEP_QUERIES[name](world) if name in SWEEP_QUERIES else ""))
    urls += [reverse(name) for name in ADMIN_PAGES]
    return urls, unbuilt


def _sweep(visitor: Visitor, urls: list[str], *, expect_ok: bool = True) -> None:
    """Open each URL that answers GET; POST-only ones are counted, errors are failures."""
    for url in urls:
        status, headers, _ = visitor.status(url)
        if status == 405:
            visitor.tally.post_only.append(url)
            continue
        if status >= 500 or (expect_ok and status not in (200, 302)):
            visitor.tally.failures.append(f"{visitor.who} GET {url} -> {status}")
            continue
        if status != 200:
            continue
        if headers.get("content-type", "").startswith("text/html"):
            visitor.open(url, bucket=visitor.tally.pages)
        else:
            visitor.export(url)


def _fragments(world: Any, planted: hostile.Planted) -> list[str]:
    sample = world.traffic_sample
    return [
        reverse("alert-list"),
        reverse("alert-list") + "?q=" + quote(hostile.SCRIPT_KINDS["script"]),
        reverse("alert-list") + "?after=" + quote(hostile.SCRIPT_KINDS["svg"].format(m="__pwned_after")),
        reverse("attack-list"),
        reverse("ticket-list"),
        reverse("ticket-list") + "?q=" + quote("<svg onload=window.__pwned_q=1>"),
        reverse("audit-list"),
        reverse("customer-list"),
        reverse("mitigation-list"),
        reverse("report-progress", args=[world.report.pk]),
        reverse("import-progress", args=[world.alert_import.pk]),
        reverse("traffic-detail", args=[sample.pk]) + "?progress=1",
        reverse("traffic-attack-suggestions", args=[world.attack.pk]),
        reverse("traffic-simulate")
        + f"?attack={sample.pk}&baseline={planted.samples[1].pk}&expression="
        + quote('http.user_agent contains "<script>window.__pwned_sim=1</script>"'),
    ]


def _prefilled(world: Any, alerts: list[Any]) -> list[str]:
    """Pages that put query parameters or hostile objects into forms, filters and message drafts."""
    from tickets.models import TicketTemplate

    p = quote(hostile.SCRIPT_KINDS["dattr"].format(m="__pwned_get"))
    s = quote(hostile.SCRIPT_KINDS["textarea"].format(m="__pwned_get_textarea"))
    ticket = world.ticket.get_absolute_url()
    return [
        # A customer message drafted from each template: attack data rendered with autoescape off, into a textarea.
        *(f"{ticket}?template={quote(t.slug)}" for t in TicketTemplate.objects.order_by("position", "pk")),
        reverse("silence-new") + "?alerts=" + ",".join(str(a.pk) for a in alerts),
        reverse("mitigation-new") + f"?attack={world.attack.pk}&kind=waf_rule&title={p}&expression={s}",
        reverse("mitigation-new") + f"?kind=ip_access&value={p}&customer={p}&ticket={p}&action={p}",
        reverse("report-new") + f"?attack={world.attack.pk}",
        reverse("report-new") + f"?ticket={p}&customer={p}",
        reverse("report-list") + f"?customer={p}",
        reverse("traffic-list") + f"?customer={p}",
        reverse("feed-detail", args=[world.feed.slug]) + f"?status={p}",
        reverse("attack-list") + f"?q={s}&vector={p}&customer={p}",
        reverse("customer-list") + f"?q={s}",
        reverse("audit-list") + f"?q={s}&customer={p}",
        reverse("mitigation-list") + f"?q={s}",
        reverse("alert-list") + f"?q={p}&vector={s}&feed={p}&assignee={p}&customer={p}",
    ]


def test_hostile_corpus_runs_no_script_anywhere(
    page,
    page_problems: PageProblems,
    live_server,
    admin_user,
    engineer,
    senior,
    customer_a,
    tmp_path,
    settings,
    record_property,
):
    started = time.monotonic()
    settings.MEDIA_ROOT = tmp_path / "media"
    customer = customer_a
    customer.name = hostile.customer_name()
    customer.contacts = [{"name": hostile.script_payloads("contact_name")[0], "email": "soc@hostile.example"}]
    customer.notes = "\n".join(hostile.script_payloads("customer_notes"))
    customer.save()
    viewer = UserFactory(username="hostile-viewer", role=roles.CUSTOMER_VIEWER, customer=customer)
    planted = hostile.plant(customer=customer, engineer=engineer, senior=senior, viewer=viewer)
    world = planted.world
    planted_at = time.monotonic()

    tally = Tally()
    base = live_server.url
    network = Network(page)
    admin = Visitor(page, page_problems, base, tally, "admin", network)
    login(page, live_server, admin_user)
    admin.check("login")

    # 1. Every page of the URL conf, as an admin who sees everything.
    urls, unbuilt = _url_plan(world)
    assert not unbuilt, f"URLs the sweep cannot build: {unbuilt}"
    _sweep(admin, urls)
    # Alert detail of one alert per feed format and of every generic payload (each a different field mix).
    alerts = {}
    for alert in planted.alerts:
        key = alert.feed.format if alert.feed.format != "generic" else f"generic-{alert.pk}"
        alerts.setdefault(key, alert)
    for alert in alerts.values():
        admin.open(alert.get_absolute_url(), bucket=tally.pages)
    for attack in planted.attacks[:15]:
        admin.open(attack.get_absolute_url(), bucket=tally.pages)
    for delivery in planted.deliveries:
        admin.open(reverse("delivery-detail", args=[delivery.pk]), bucket=tally.pages)
    for sample in planted.samples:
        admin.open(sample.get_absolute_url(), bucket=tally.pages)
        if sample.label == "attack":
            admin.open(f"{sample.get_absolute_url()}compare/?baseline={planted.samples[1].pk}", bucket=tally.pages)
    for report in planted.reports:
        admin.open(report.get_absolute_url(), bucket=tally.pages)
    for m in world.mitigation.__class__.objects.filter(customer=customer):
        admin.open(m.get_absolute_url(), bucket=tally.pages)
        admin.open(reverse("mitigation-approval", args=[m.pk]), bucket=tally.pages)

    for url in _prefilled(world, list(alerts.values())[:10]):
        admin.open(url, bucket=tally.pages)

    # 2. The htmx fragments and polling partials, as htmx fetches them and as documents of their own.
    for url in _fragments(world, planted):
        status, headers, _ = admin.status(url, {"HX-Request": "true"})
        if status != 200:
            tally.failures.append(f"admin fragment {url} -> {status}")
            continue
        admin.open(url, bucket=tally.fragments, headers={"HX-Request": "true"})

    # 3. Exports: report figures (CSV, JSON), the PDF, rule exports for every target format.
    for report in planted.reports:
        for kind in ("csv", "json"):
            admin.export(reverse("report-download", args=[report.pk, kind]), csv=kind == "csv")
    from mitigations.views import EXPORTS

    for mitigation in planted.mitigations:
        compiled = mitigation.compiled or {}
        formats = [fmt for fmt in EXPORTS if compiled.get(fmt) or compiled.get("export", {}).get(fmt)]
        assert formats, (mitigation, mitigation.compile_errors)
        for fmt in formats:
            admin.export(reverse("mitigation-export", args=[mitigation.pk, fmt]))
    pdf_report = planted.reports[0]
    pdf_checked = False
    if pdf_report.pdf:
        status, headers, body = admin.status(reverse("report-download", args=[pdf_report.pk, "pdf"]))
        assert status == 200 and headers.get("content-type") == "application/pdf", (status, headers)
        tally.exports.append(reverse("report-download", args=[pdf_report.pk, "pdf"]))
        if shutil.which("pdftotext"):
            (tmp_path / "report.pdf").write_bytes(body)
            text = subprocess.run(
                ["pdftotext", "-enc", "UTF-8", str(tmp_path / "report.pdf"), "-"],
                capture_output=True,
                text=True,
                check=True,
            ).stdout
            assert "__pwned_" in text and "<" in text, "the report PDF should show the payloads as text"
            pdf_checked = True
    else:
        tally.failures.append(f"report {pdf_report.pk} has no PDF: {pdf_report.pdf_error}")
    # The print page the PDF is made from, opened with no CSP at all: escaping alone must hold.
    from reports.services import render_print

    print_html = render_print(pdf_report, pdf_report.html)
    page.route(f"{base}/__print__", lambda route: route.fulfill(body=print_html, content_type="text/html"))
    admin.open("/__print__", bucket=tally.pages)
    page.unroute(f"{base}/__print__")

    # 4. Interactions: what an engineer does on these pages.
    _interact(admin, world, planted, live_server)

    # 5. The customer's viewer: everything the URL conf lets them open.
    page.context.clear_cookies()
    viewer_visitor = Visitor(page, page_problems, base, tally, "customer viewer", network)
    login(page, live_server, viewer)
    viewer_visitor.check("login")
    _sweep(viewer_visitor, urls, expect_ok=False)
    for report in planted.reports:
        viewer_visitor.open(report.get_absolute_url(), bucket=tally.pages)
        viewer_visitor.export(reverse("report-download", args=[report.pk, "csv"]), csv=True)

    # 6. Anyone with the share link.
    page.context.clear_cookies()
    anonymous = Visitor(page, page_problems, base, tally, "anonymous", network)
    anonymous.open(reverse("report-share-view", args=[world.share_token]), bucket=tally.pages)
    for kind in ("csv", "json"):
        anonymous.export(reverse("report-share-download", args=[world.share_token, kind]), csv=kind == "csv")

    missing_probes = sorted(set(hostile.TEMPLATE_PROBES) - tally.literal_probes)
    if missing_probes:
        tally.failures.append(f"template probes never shown literally (planted but lost?): {missing_probes}")

    fields = len(planted.fields)
    summary = (
        f"hostile corpus: {len(tally.pages)} page loads ({len(set(tally.pages))} distinct URLs), "
        f"{len(tally.fragments)} htmx fragments, {len(tally.exports)} exports"
        f"{' + PDF text checked' if pdf_checked else ''}, {len(tally.interactions)} interactions, "
        f"{len(set(tally.post_only))} POST-only URLs skipped; {planted.payload_count} payloads planted in "
        f"{fields} field groups ({len(hostile.payloads('x'))} payloads per field: "
        f"{len(hostile.SCRIPT_KINDS)} script tricks, {len(hostile.TEMPLATE_PROBES)} template probes, "
        f"{len(hostile.FORMULAS)} formulas, {len(hostile.ODD_TEXT)} odd texts; plus over-long and non-UTF-8 values); "
        f"{len(planted.alerts)} alerts, {len(planted.attacks)} attacks, {len(planted.samples)} traffic samples, "
        f"{len(planted.reports)} reports; planted in {planted_at - started:.0f} s, visited in "
        f"{time.monotonic() - planted_at:.0f} s"
    )
    record_property("hostile_corpus", summary)
    report_figures("hostile corpus", summary)
    assert not tally.failures, f"{len(tally.failures)} problems:\n" + "\n".join(tally.failures)


def _interact(visitor: Visitor, world: Any, planted: hostile.Planted, live_server: Any) -> None:
    from playwright.sync_api import expect

    from alerts import services as alert_services
    from alerts.formats import examples
    from alerts.models import Feed

    page, tally = visitor.page, visitor.tally

    # The live queue: hostile alerts arriving while the page is open are polled in.
    visitor.open(reverse("alert-list"), bucket=tally.pages)
    rows = page.locator("#queue-rows tr[data-id]")
    before = rows.count()
    feed = Feed.objects.get(slug="hostile-generic")
    body = examples.body(
        [
            {"title": p, "target_host": "live.hostile.example", "severity": "critical", "description": p}
            for p in hostile.script_payloads("live")
        ]
    )
    received = alert_services.delivery_receive(feed=feed, body=body, headers={"user-agent": "live"})
    alert_services.delivery_process(delivery_id=received.delivery.pk)
    planted.count("live queue alerts (title, description)", 2 * len(hostile.SCRIPT_KINDS))
    try:
        expect(page.locator("#queue-rows tr.fresh").first).to_be_visible(timeout=15_000)
    except AssertionError:
        tally.failures.append(f"live queue: new hostile alerts never appeared (rows before {before})")
    page.mouse.move(400, 400)
    visitor.check("alert queue after live update")
    tally.interactions.append("live queue update")

    # Save a view named with a payload, through the form.
    page.fill(
        "form[action$='/alerts/views/'] input[name=name]", hostile.SCRIPT_KINDS["img"].format(m="__pwned_ui_view")
    )
    with page.expect_navigation():
        page.click("form[action$='/alerts/views/'] button[type=submit]")
    visitor.settle()
    visitor.check("saved view form")
    tally.interactions.append("save view")

    # Silence preview: a matcher matching every hostile alert (its feeds; "title=~.*" is refused
    # as a silence of everything); the preview is set as innerHTML.
    visitor.open(reverse("silence-new"), bucket=tally.pages)
    page.locator("input[name=m_field]").first.fill("feed")
    page.locator("select[name=m_op]").first.select_option("=~")
    with page.expect_response(lambda r: r.url.endswith(reverse("silence-preview"))):
        page.locator("input[name=m_value]").first.fill("hostile-.*")
    visitor.settle()
    if not page.locator("#silence-preview li").count():
        tally.failures.append(f"silence preview listed no hostile alert: {page.inner_html('#silence-preview')[:300]}")
    visitor.check("silence preview of hostile alerts")
    tally.interactions.append("silence preview")

    # Alert detail: open every collapsed section (raw payload) and hover over everything.
    visitor.open(world.alert.get_absolute_url(), bucket=tally.pages)
    for details in page.locator("details").all():
        details.evaluate("el => el.open = true")
    page.mouse.move(10, 10)
    visitor.check("alert detail, sections opened")
    tally.interactions.append("alert detail raw payload")

    # Attack timeline chart: hover along it so plotly draws hover labels from hostile text.
    visitor.open(world.attack.get_absolute_url(), bucket=tally.pages)
    for chart in page.locator(".chart").all()[:3]:
        box = chart.bounding_box()
        if not box:
            continue
        for i in range(1, 10):
            page.mouse.move(box["x"] + box["width"] * i / 10, box["y"] + box["height"] / 2)
            page.wait_for_timeout(30)
    visitor.check("attack detail chart hover")
    tally.interactions.append("attack chart hover")

    # Traffic sample charts and the suggestion card's "Propose mitigation" (expression from hostile values).
    sample = planted.samples[0]
    visitor.open(sample.get_absolute_url(), bucket=tally.pages)
    for chart in page.locator(".chart").all()[:6]:
        box = chart.bounding_box()
        if box:
            page.mouse.move(box["x"] + box["width"] / 3, box["y"] + box["height"] / 2)
            page.wait_for_timeout(30)
    visitor.check("traffic sample chart hover")
    visitor.open(f"{sample.get_absolute_url()}compare/?baseline={planted.samples[1].pk}", bucket=tally.pages)
    propose = page.get_by_role("link", name="Propose mitigation")
    if propose.count():
        with page.expect_navigation():
            propose.first.click()
        visitor.settle()
        visitor.check("propose mitigation from a hostile signature")
        tally.pages.append(urlsplit(page.url).path)
        tally.interactions.append("propose from comparison")

    # Share the report: the page renders the new link next to the hostile report.
    visitor.open(world.report.get_absolute_url(), bucket=tally.pages)
    share = page.locator(f"form[action='{reverse('report-share', args=[world.report.pk])}'] button[type=submit]")
    if share.count():
        with page.expect_navigation():
            share.first.click()
        visitor.settle()
        visitor.check("report shared")
        tally.interactions.append("share report")

    # Write a note with a payload on the ticket, through the form.
    visitor.open(world.ticket.get_absolute_url(), bucket=tally.pages)
    note = page.locator(f"form[action='{reverse('ticket-note', args=[world.ticket.number])}'] textarea").first
    if note.count():
        note.fill("</textarea><script>window.__pwned_ui_note=1</script>" + hostile.TEMPLATE_PROBES[0])
        with page.expect_navigation():
            page.locator(f"form[action='{reverse('ticket-note', args=[world.ticket.number])}'] button").first.click()
        visitor.settle()
        visitor.check("ticket note written")
        tally.interactions.append("ticket note")
