"""Isolation matrix, generated from the URL conf: every page and endpoint that takes an object id.

Customers A and B each get one object of every kind (tests/security/builders.py). For every URL
pattern with a path argument (pages in ``console.urls`` and its includes, and the API routers):

* a customer viewer of A gets 404 for B's object;
* an outsider (logged in, no role) gets 404 for every object;
* an anonymous visitor is sent to the login page (pages) or gets 401/403 (API).

A URL with an argument that is neither in ``BUILDERS`` nor in ``EXEMPT`` fails the test, so a new
page or endpoint cannot silently escape the matrix.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from typing import Any

from django.urls import URLPattern, URLResolver, get_resolver, reverse
from rest_framework.test import APIClient

from console import roles
from console.models import AuditEvent, Customer
from mitigations.models import Mitigation
from tests.factories import UserFactory
from tests.security.builders import World
from tests.shared import report_figures

# URL name -> the kwargs of customer B's object (``w`` is B's world).
BUILDERS: dict[str, Callable[[World], dict[str, Any]]] = {
    # pages
    "api-token-revoke": lambda w: {"pk": w.api_token.pk},
    "customer-detail": lambda w: {"slug": w.customer.slug},
    "customer-dashboard": lambda w: {"slug": w.customer.slug},
    "report-detail": lambda w: {"pk": w.report.pk},
    "report-progress": lambda w: {"pk": w.report.pk},
    "report-download": lambda w: {"pk": w.report.pk, "kind": "csv"},
    "report-share": lambda w: {"pk": w.report.pk},
    "report-share-revoke": lambda w: {"pk": w.report.pk, "link_id": w.share_link.pk},
    "report-send": lambda w: {"pk": w.report.pk},
    "alert-detail": lambda w: {"pk": w.alert.pk},
    "alert-pane": lambda w: {"pk": w.alert.pk},
    "attack-detail": lambda w: {"pk": w.attack.pk},
    "report-attack-places": lambda w: {"pk": w.attack.pk},
    "report-alert-places": lambda w: {"pk": w.alert.pk},
    "feed-detail": lambda w: {"slug": w.feed.slug},
    "feed-rotate": lambda w: {"slug": w.feed.slug},
    "feed-import": lambda w: {"slug": w.feed.slug},
    "feed-edit": lambda w: {"slug": w.feed.slug},
    "feed-preview": lambda w: {"slug": w.feed.slug},
    "feed-replay": lambda w: {"slug": w.feed.slug},
    "import-progress": lambda w: {"pk": w.alert_import.pk},
    "delivery-detail": lambda w: {"pk": w.delivery.pk},
    "delivery-reprocess": lambda w: {"pk": w.delivery.pk},
    "silence-expire": lambda w: {"pk": w.silence.pk},
    "ticket-detail": lambda w: {"number": w.ticket.number},
    "ticket-transition": lambda w: {"number": w.ticket.number},
    "ticket-assign": lambda w: {"number": w.ticket.number},
    "ticket-handoff": lambda w: {"number": w.ticket.number},
    "ticket-note": lambda w: {"number": w.ticket.number},
    "ticket-message": lambda w: {"number": w.ticket.number},
    "ticket-contact": lambda w: {"number": w.ticket.number},
    "ticket-inbound-mail-detail": lambda w: {"pk": w.inbound_mail.pk},
    "ticket-inbound-mail-attach": lambda w: {"pk": w.inbound_mail.pk},
    "ticket-inbound-mail-open": lambda w: {"pk": w.inbound_mail.pk},
    "ticket-undo": lambda w: {"number": w.ticket.number, "entry_id": w.ticket.timeline.order_by("id").first().pk},
    "traffic-detail": lambda w: {"pk": w.traffic_sample.pk},
    "traffic-compare": lambda w: {"pk": w.traffic_sample.pk},
    "traffic-attack-suggestions": lambda w: {"attack_id": w.attack.pk},
    "mitigation-list-detail": lambda w: {"pk": w.mitigation_list.pk},
    "mitigation-list-item-remove": lambda w: {"pk": w.mitigation_list.pk, "item_pk": w.list_item.pk},
    "mitigation-detail": lambda w: {"pk": w.mitigation.pk},
    "mitigation-approval": lambda w: {"pk": w.mitigation.pk},
    "mitigation-export": lambda w: {"pk": w.mitigation.pk, "fmt": "nftables"},
    "mitigation-action": lambda w: {"pk": w.mitigation.pk, "verb": "propose"},
    # API
    "reports-api:report-api-detail": lambda w: {"pk": w.report.pk},
    "reports-api:report-api-revoke-share": lambda w: {"pk": w.report.pk},
    "reports-api:report-api-share": lambda w: {"pk": w.report.pk},
    "api:customer-detail": lambda w: {"slug": w.customer.slug},
    "api:customer-archive": lambda w: {"slug": w.customer.slug},
    "api:customer-unarchive": lambda w: {"slug": w.customer.slug},
    "api:asset-detail": lambda w: {"pk": w.asset.pk},
    "api:user-detail": lambda w: {"pk": w.viewer.pk},
    "api:auditevent-detail": lambda w: {"pk": w.audit_event.pk},
    "api:feed-detail": lambda w: {"slug": w.feed.slug},
    **{
        f"api:feed-{action}": (lambda w: {"slug": w.feed.slug})
        for action in ("disable", "enable", "import-file", "preview", "replay", "rotate-secret")
    },
    "api:delivery-detail": lambda w: {"pk": w.delivery.pk},
    "api:delivery-reprocess": lambda w: {"pk": w.delivery.pk},
    "api:alert-detail": lambda w: {"pk": w.alert.pk},
    "api:attack-detail": lambda w: {"pk": w.attack.pk},
    "api:silence-detail": lambda w: {"pk": w.silence.pk},
    "api:silence-expire": lambda w: {"pk": w.silence.pk},
    "api:trafficsample-detail": lambda w: {"pk": w.traffic_sample.pk},
    "api:trafficsample-compare": lambda w: {"pk": w.traffic_sample.pk},
    "api:trafficsample-simulate": lambda w: {"pk": w.traffic_sample.pk},
    "api:mitigationlist-detail": lambda w: {"pk": w.mitigation_list.pk},
    "api:mitigationlist-import-items": lambda w: {"pk": w.mitigation_list.pk},
    "api:mitigationlist-items": lambda w: {"pk": w.mitigation_list.pk},
    **{
        f"api:ticket-{action}": (lambda w: {"number": w.ticket.number})
        for action in (
            "detail",
            "add-note",
            "assign",
            "escalate",
            "link-alerts",
            "log-contact",
            "send-message",
            "timeline",
            "transition",
        )
    },
    **{
        f"api:mitigation-{action}": (lambda w: {"pk": w.mitigation.pk})
        for action in (
            "detail",
            "apply",
            "approve",
            "extend",
            "propose",
            "rollback",
            "simulate",
            "withdraw",
            "override-safety",
        )
    },
    # Global objects (no customer): internal-only, so still 404 for customer viewers and outsiders.
    "api:tickettemplate-detail": lambda w: {"slug": w.template.slug},
    "api:globalallowlist-detail": lambda w: {"pk": w.allowlist_entry.pk},
}

# URL name -> why it is not in the matrix (each is tested on its own below or elsewhere).
EXEMPT: dict[str, str] = {
    "ingest": "webhook authenticated by the feed's bearer token, not a session (tests/alerts/test_ingest.py)",
    "report-share-view": "public by design; a wrong token must 404 (test_share_links_404_for_a_wrong_token)",
    "report-share-download": "public by design; a wrong token must 404 (test_share_links_404_for_a_wrong_token)",
    "two-factor-enrol": "a single-use token for its own user only; another user's is refused "
    "(tests/console/test_two_factor.py test_a_link_works_only_for_its_own_user_and_not_after_it_expired)",
}
EXEMPT_NAMESPACES = {
    "admin": "Django admin: staff only, everyone else is sent to the admin login (test_admin_is_staff_only)",
}
IGNORED_ARGS = {"format"}  # DRF's format-suffix twins of each route


def _walk(patterns: list, namespace: str = "") -> Iterator[tuple[str, str, set[str]]]:
    for p in patterns:
        if isinstance(p, URLResolver):
            ns = p.namespace or ""
            full = f"{namespace}:{ns}" if namespace and ns else (ns or namespace)
            for name, route, args in _walk(p.url_patterns, full):
                yield name, str(p.pattern) + route, args
        elif isinstance(p, URLPattern):
            args = set(p.pattern.regex.groupindex) | set(getattr(p.pattern, "converters", {}))
            name = f"{namespace}:{p.name or ''}" if namespace else (p.name or "")
            yield name, str(p.pattern), args


def object_urls() -> dict[str, str]:
    """name -> route of every URL pattern that takes an argument (other than a format suffix)."""
    found = {}
    for name, route, args in _walk(get_resolver().url_patterns):
        if args - IGNORED_ARGS:
            found.setdefault(name, route)
    return found


def test_every_object_url_is_in_the_matrix_or_exempt():
    urls = object_urls()
    unknown = sorted(
        f"{name} ({route})"
        for name, route in urls.items()
        if name not in BUILDERS and name not in EXEMPT and name.split(":")[0] not in EXEMPT_NAMESPACES
    )
    assert not unknown, f"URLs with an object argument the isolation matrix cannot build: {unknown}"
    stale = sorted(set(BUILDERS) - set(urls))
    assert not stale, f"the matrix builds URLs that no longer exist: {stale}"


def _is_api(name: str) -> bool:
    return ":" in name


def _hit(client: Any, url: str) -> tuple[str, int, Any]:
    """GET, or POST when the URL does not answer GET (405)."""
    response = client.get(url)
    if response.status_code == 405:
        response = client.post(url, {}, format="json") if isinstance(client, APIClient) else client.post(url, {})
        return "POST", response.status_code, response
    return "GET", response.status_code, response


def _clients(user: Any | None) -> tuple[Any, Any]:
    from django.test import Client

    page = Client()
    api = APIClient()
    if user is not None:
        page.force_login(user)
        api.force_authenticate(user)
    return page, api


def test_isolation_matrix(worlds, customer_viewer, outsider):
    _, b = worlds
    urls = {name: reverse(name, kwargs=build(b)) for name, build in sorted(BUILDERS.items())}
    pages = [n for n in urls if not _is_api(n)]
    endpoints = [n for n in urls if _is_api(n)]
    failures = []
    counts = {"requests": 0}

    for who, user in (("customer viewer of A", customer_viewer), ("outsider", outsider)):
        page_client, api_client = _clients(user)
        for name, url in urls.items():
            client = api_client if _is_api(name) else page_client
            method, status, _ = _hit(client, url)
            counts["requests"] += 1
            if status != 404:
                failures.append(f"{who}: {method} {url} ({name}) -> {status}, expected 404")

    page_client, api_client = _clients(None)
    for name, url in urls.items():
        method, status, response = _hit(api_client if _is_api(name) else page_client, url)
        counts["requests"] += 1
        if _is_api(name):
            if status not in (401, 403):
                failures.append(f"anonymous: {method} {url} ({name}) -> {status}, expected 401/403")
        elif not (status == 302 and response["Location"].startswith(reverse("login"))):
            failures.append(f"anonymous: {method} {url} ({name}) -> {status}, expected a redirect to the login page")

    report_figures(
        "isolation matrix",
        f"isolation matrix: {len(pages)} pages and {len(endpoints)} API endpoints with an object id, "
        f"{len(EXEMPT)} exempt URLs + namespaces {sorted(EXEMPT_NAMESPACES)}, "
        f"{counts['requests']} requests (customer viewer of A, outsider, anonymous)",
    )
    assert not failures, "\n".join(failures)


def test_customer_viewer_still_sees_their_own_objects(worlds, customer_viewer):
    """The matrix's 404s are isolation, not a broken page: A's viewer opens A's own objects."""
    a, _ = worlds
    page_client, api_client = _clients(customer_viewer)
    assert page_client.get(reverse("report-detail", args=[a.report.pk])).status_code == 200
    assert api_client.get(reverse("reports-api:report-api-detail", args=[a.report.pk])).status_code == 200
    assert api_client.get(reverse("api:customer-detail", args=[a.customer.slug])).status_code == 200


def test_share_links_404_for_a_wrong_token(worlds, client):
    _, b = worlds
    good = b.share_token
    assert client.get(reverse("report-share-view", args=[good])).status_code == 200
    for token in ("nope", good[:-1] + ("A" if good[-1] != "A" else "B"), "x" * 101, good.upper()):
        if token == good:
            continue
        assert client.get(reverse("report-share-view", args=[token])).status_code == 404
        assert client.get(reverse("report-share-download", args=[token, "csv"])).status_code == 404


def test_admin_is_staff_only(worlds, customer_viewer, outsider, engineer):
    _, b = worlds
    url = reverse("admin:tickets_ticket_change", args=[b.ticket.pk])
    for user in (customer_viewer, outsider, engineer, None):
        page, _ = _clients(user)
        response = page.get(url)
        assert response.status_code == 302, (user, response.status_code)
        assert response["Location"].startswith(("/admin/login/", reverse("login"))), (user, response["Location"])


def test_engineer_cannot_approve_own_mitigation_through_the_api(customer_a, senior, senior2, api_as):
    """A senior engineer (who may approve) is refused on their own mitigation; another senior is not."""
    from mitigations import services

    mitigation = services.mitigation_create(
        customer=customer_a,
        kind="firewall_rule",
        user=senior,
        targets=["export"],
        expression="ip.dst in {203.0.113.0/24} and ip.src in {198.18.0.0/24} and udp.dstport eq 53",
        action="block",
        ttl_seconds=600,
    )
    from tests.mitigations.conftest import traffic

    # Simulated on a baseline it does not touch: low blast radius, one other senior suffices.
    services.mitigation_simulate(
        mitigation=mitigation,
        attack_table=traffic([("198.18.0.7", 17, 53)] * 10),
        baseline_table=traffic([("192.0.2.200", 6, 443), ("198.51.100.9", 17, 53)] * 50),
    )
    mitigation = services.mitigation_propose(mitigation=mitigation, user=senior)
    assert mitigation.state == Mitigation.State.PROPOSED and mitigation.blast_radius == "low"
    url = reverse("api:mitigation-approve", args=[mitigation.pk])

    response = api_as(senior).post(url, {"comment": "looks good to me"}, format="json")
    assert response.status_code in (400, 403, 409), response.content
    assert "another senior engineer must approve" in response.content.decode()
    mitigation.refresh_from_db()
    assert mitigation.state == Mitigation.State.PROPOSED
    assert not mitigation.approvals.filter(user=senior).exists()

    response = api_as(senior2).post(url, {"comment": "checked the collateral"}, format="json")
    assert response.status_code == 200, response.content
    assert mitigation.approvals.filter(user=senior2).exists()


# Actions only a senior engineer or an admin may take: an engineer (who may act) is refused with 403.
SENIOR_ONLY = {
    "api:mitigation-approve": {},
    "api:mitigation-apply": {},
    "api:mitigation-extend": {"seconds": 600},
    "mitigation-approval": {},
    "feed-rotate": {},
}
SENIOR_ONLY_PAGES = {"mitigation-action": ("approve", "apply", "extend")}
# Personal objects: another user's token is not anyone's to see, so a viewer gets 404 (scope), not 403.
PERSONAL = {"api-token-revoke"}
# Pages that only read: a POST changes nothing (405, or the page again), whoever asks; every other
# page of the matrix is an action, refused by role.
READ_ONLY_PAGES = {
    "alert-detail",
    "alert-pane",
    "attack-detail",
    "customer-dashboard",
    "customer-detail",
    "delivery-detail",
    "feed-detail",
    "import-progress",
    "mitigation-detail",
    "mitigation-export",
    "report-detail",
    "report-download",
    "report-progress",
    "report-alert-places",
    "report-attack-places",
    "ticket-detail",
    "ticket-inbound-mail-detail",
    "traffic-attack-suggestions",
    "traffic-compare",
    "traffic-detail",
}
WRITE_METHODS = ("post", "put", "patch", "delete")


def _write(client: Any, method: str, url: str, data: dict | None = None) -> int:
    data = data or {}
    if isinstance(client, APIClient):
        return getattr(client, method)(url, data, format="json").status_code
    if method == "post":
        return client.post(url, data).status_code
    return getattr(client, method)(url).status_code


def test_role_refusals_answer_403_and_scope_404(worlds, viewer, customer_viewer):
    """Every URL of the matrix, written to by a role that may not act: 403 in scope, 404 outside it.

    An internal viewer sees every customer's objects, so each write to B's objects is a role refusal
    (403; 405 only where the route has no such method). A customer viewer of A writing to A's own
    objects is refused 403 where they can read the object and 404 where they cannot (scope first).
    """
    a, b = worlds
    a.objects.update(template=b.template, allowlist_entry=b.allowlist_entry)  # global objects: one of each
    failures = []
    counts = {"requests": 0, "403": 0, "404": 0}
    cases = (("viewer", viewer, b), ("customer viewer of A, own objects", customer_viewer, a))
    for who, user, world in cases:
        page_client, api_client = _clients(user)
        for name, build in sorted(BUILDERS.items()):
            url = reverse(name, kwargs=build(world))
            client = api_client if _is_api(name) else page_client
            if name in READ_ONLY_PAGES:
                status = client.post(url, {}).status_code
                counts["requests"] += 1
                if status not in (200, 404, 405):
                    failures.append(f"{who}: POST {url} ({name}) -> {status}, expected 200, 404 or 405 (a read)")
                continue
            read = client.get(url).status_code
            counts["requests"] += 1
            in_scope = read != 404
            if who == "viewer":
                in_scope = name not in PERSONAL
            methods = WRITE_METHODS if _is_api(name) else ("post",)
            for method in methods:
                status = _write(client, method, url)
                counts["requests"] += 1
                expected = {403, 405} if in_scope and method != "post" else {403} if in_scope else {404}
                if read == 405 and who != "viewer":
                    expected = {403, 404}  # a POST-only page: its object's scope is not readable here
                if status not in expected:
                    failures.append(f"{who}: {method.upper()} {url} ({name}) -> {status}, expected {sorted(expected)}")
                counts[str(status)] = counts.get(str(status), 0) + 1
    report_figures(
        "isolation matrix (roles)",
        f"role refusals: {counts['requests']} requests by a viewer and a customer viewer, "
        f"{counts['403']} answered 403 (role), {counts['404']} answered 404 (scope)",
    )
    assert not failures, "\n".join(failures)


def test_senior_only_actions_answer_403_to_an_engineer(worlds, engineer):
    """An engineer may act, but approving, applying and extending are a senior's: 403 with the reason."""
    _, b = worlds
    page_client, api_client = _clients(engineer)
    failures = []
    for name, data in SENIOR_ONLY.items():
        url = reverse(name, kwargs=BUILDERS[name](b))
        client = api_client if _is_api(name) else page_client
        response = client.post(url, data, format="json") if _is_api(name) else client.post(url, data)
        if response.status_code != 403:
            failures.append(f"engineer: POST {url} ({name}) -> {response.status_code}, expected 403")
        elif _is_api(name):
            assert "senior" in response.json()["detail"], response.content
    for name, verbs in SENIOR_ONLY_PAGES.items():
        for verb in verbs:
            url = reverse(name, kwargs={"pk": b.mitigation.pk, "verb": verb})
            status = page_client.post(url, {"seconds": 600}).status_code
            if status != 403:
                failures.append(f"engineer: POST {url} ({name}) -> {status}, expected 403")
    assert not failures, "\n".join(failures)
    b.mitigation.refresh_from_db()
    assert b.mitigation.state == Mitigation.State.DRAFT and not b.mitigation.approvals.exists()


def test_state_conflicts_answer_409(worlds, senior, engineer):
    """A refusal because of the object's state is a conflict: 409 with the reason, nothing changed."""
    _, b = worlds
    api = APIClient()
    api.force_authenticate(senior)
    draft = b.mitigation
    for verb, data in (("approve", {}), ("apply", {}), ("extend", {"seconds": 60}), ("rollback", {})):
        response = api.post(reverse(f"api:mitigation-{verb}", args=[draft.pk]), data, format="json")
        assert response.status_code == 409, (verb, response.status_code, response.content)
        assert response.json()["detail"], verb
    draft.refresh_from_db()
    assert draft.state == Mitigation.State.DRAFT

    api.force_authenticate(engineer)
    response = api.post(reverse("api:ticket-transition", args=[b.ticket.number]), {"to": "closed"}, format="json")
    assert response.status_code == 409 and "cannot go from" in response.json()["detail"]
    # A bad value is still a bad request, not a conflict.
    response = api.post(reverse("api:ticket-transition", args=[b.ticket.number]), {"to": "nope"}, format="json")
    assert response.status_code == 400


def test_wrong_method_on_the_ingest_webhook_is_405(worlds, client):
    """GET, PUT, PATCH, DELETE on the webhook: 405 with Allow: POST, and nothing stored."""
    _, b = worlds
    url = reverse("ingest", args=[b.feed.slug])
    before = b.feed.deliveries.count()
    for method in ("get", "put", "patch", "delete", "options"):
        response = getattr(client, method)(url)
        assert response.status_code == 405, (method, response.status_code)
        assert response["Allow"] == "POST"
    response = client.head(url)
    assert response.status_code == 405
    assert b.feed.deliveries.count() == before


# --------------------------------------------------------------------------- role matrix

# The roles, lowest first: each may do what every role before it may (the outsider and the
# customer viewer may write nothing of the provider's).
ROLE_ORDER = ("viewer", "engineer", "senior", "admin")
# Every write endpoint of the API (URL name, method) -> the least role that may use it. Built
# against ``write_endpoints()``, which reads the routers: a new endpoint fails the completeness test
# until someone decides here who may use it.
ROLE_TABLE: dict[tuple[str, str], str] = {
    ("api:alert-bulk", "post"): "engineer",
    ("api:asset-detail", "delete"): "admin",
    ("api:asset-detail", "patch"): "admin",
    ("api:asset-detail", "put"): "admin",
    ("api:asset-list", "post"): "admin",
    ("api:customer-archive", "post"): "admin",
    ("api:customer-detail", "delete"): "admin",
    ("api:customer-detail", "patch"): "admin",
    ("api:customer-detail", "put"): "admin",
    ("api:customer-list", "post"): "admin",
    ("api:customer-unarchive", "post"): "admin",
    ("api:delivery-reprocess", "post"): "engineer",
    ("api:feed-detail", "patch"): "senior",
    ("api:feed-detail", "put"): "senior",
    ("api:feed-disable", "post"): "senior",
    ("api:feed-enable", "post"): "senior",
    ("api:feed-import-file", "post"): "engineer",
    ("api:feed-list", "post"): "senior",
    ("api:feed-preview", "post"): "engineer",
    ("api:feed-replay", "post"): "engineer",
    ("api:feed-rotate-secret", "post"): "senior",
    ("api:mitigation-apply", "post"): "senior",
    ("api:mitigation-approve", "post"): "senior",
    ("api:mitigation-bulk-approve", "post"): "senior",
    ("api:mitigation-extend", "post"): "senior",
    ("api:mitigation-list", "post"): "engineer",
    ("api:mitigation-override-safety", "post"): "admin",
    ("api:mitigation-propose", "post"): "engineer",
    ("api:mitigation-rollback", "post"): "engineer",
    ("api:mitigation-simulate", "post"): "engineer",
    ("api:mitigation-withdraw", "post"): "engineer",
    ("api:mitigationlist-import-items", "post"): "engineer",
    ("api:mitigationlist-list", "post"): "engineer",
    ("api:silence-expire", "post"): "engineer",
    ("api:silence-list", "post"): "engineer",
    ("api:silence-preview", "post"): "engineer",
    ("api:ticket-add-note", "post"): "engineer",
    ("api:ticket-assign", "post"): "engineer",
    ("api:ticket-detail", "patch"): "engineer",
    ("api:ticket-escalate", "post"): "engineer",
    ("api:ticket-link-alerts", "post"): "engineer",
    ("api:ticket-list", "post"): "engineer",
    ("api:ticket-log-contact", "post"): "engineer",
    ("api:ticket-send-message", "post"): "engineer",
    ("api:ticket-transition", "post"): "engineer",
    ("api:trafficsample-list", "post"): "engineer",
    ("api:trafficsample-simulate", "post"): "engineer",
    ("reports-api:report-api-list", "post"): "engineer",
    ("reports-api:report-api-revoke-share", "post"): "engineer",
    ("reports-api:report-api-share", "post"): "engineer",
}
# Bodies that pass input validation, so that a role refused after validation is seen refused.
ROLE_PAYLOADS: dict[tuple[str, str], Callable[[World], dict[str, Any]]] = {
    ("api:mitigation-extend", "post"): lambda w: {"seconds": 600},
    ("api:mitigation-override-safety", "post"): lambda w: {"reason": "the resolver is the customer's own"},
    ("api:mitigation-bulk-approve", "post"): lambda w: {"ids": [w.mitigation.pk]},
}
# Outsiders and customer viewers ask for B's objects: out of scope is 404 where a route names an
# object, 403 where it does not; tickets are internal, so creating one out of scope is a 404 too.
OUT_OF_SCOPE_OVERRIDES = {("api:ticket-list", "post"): 404}
# What a role that may use an endpoint gets with these bodies: done, or refused for what was sent
# (400, 415) or for the object's state (409), never for who asked.
PASSES_ROLE_CHECK = {200, 201, 202, 204, 400, 409, 415}
API_NAMESPACES = ("api", "reports-api")


def write_endpoints() -> dict[tuple[str, str], str]:
    """(URL name, method) -> route of every write the API routers expose, read from their viewsets."""
    found: dict[tuple[str, str], str] = {}

    def walk(patterns: list, namespace: str = "", prefix: str = "") -> None:
        for p in patterns:
            if isinstance(p, URLResolver):
                ns = p.namespace or ""
                full = f"{namespace}:{ns}" if namespace and ns else (ns or namespace)
                walk(p.url_patterns, full, prefix + str(p.pattern))
            elif isinstance(p, URLPattern) and namespace in API_NAMESPACES:
                if "format" in p.pattern.regex.groupindex:
                    continue  # the format-suffix twin of a route
                for method in getattr(p.callback, "actions", None) or {}:
                    if method in WRITE_METHODS:
                        found[(f"{namespace}:{p.name}", method)] = prefix + str(p.pattern).lstrip("^")

    walk(get_resolver().url_patterns)
    return found


def _schema_path(route: str) -> str:
    """``api/customers/(?P<slug>[^/.]+)/archive/$`` -> ``/api/customers/{}/archive/`` (the schema renames pk to id)."""
    return "/" + re.sub(r"\(\?P<\w+>[^)]*\)", "{}", route).rstrip("$")


def test_every_write_endpoint_has_a_role_and_the_schema_agrees():
    from drf_spectacular.generators import SchemaGenerator

    endpoints = write_endpoints()
    unknown = sorted(set(endpoints) - set(ROLE_TABLE))
    assert not unknown, f"write endpoints with no least role in ROLE_TABLE: {unknown}"
    stale = sorted(set(ROLE_TABLE) - set(endpoints))
    assert not stale, f"ROLE_TABLE names endpoints that no longer exist: {stale}"
    assert set(ROLE_TABLE.values()) <= set(ROLE_ORDER)
    # The routers and the published schema list the same writes: nothing writes beside the routers.
    paths = SchemaGenerator().get_schema(request=None, public=True)["paths"]
    in_schema = {(re.sub(r"\{\w+\}", "{}", path), m) for path, ops in paths.items() for m in ops if m in WRITE_METHODS}
    routed = {(_schema_path(route), m) for (_, m), route in endpoints.items()}
    assert in_schema == routed, (sorted(in_schema - routed), sorted(routed - in_schema))


def _expected(key: tuple[str, str], who: str, names_object: bool) -> set[int]:
    if who == "anonymous":
        return {401}
    if who in ("outsider", "customer viewer of A"):
        return {OUT_OF_SCOPE_OVERRIDES.get(key, 404 if names_object else 403)}
    if ROLE_ORDER.index(who) < ROLE_ORDER.index(ROLE_TABLE[key]):
        return {403}
    return PASSES_ROLE_CHECK


def test_role_matrix(worlds, customer_viewer, outsider, viewer, engineer, senior):
    """Every write endpoint x every role, on customer B's objects, each request rolled back after it.

    Below the endpoint's least role: 403 (internal roles see B, so it is the role that refuses);
    out of scope: 404; anonymous: 401; at or above it: anything but a refusal of who asks.
    """
    from django.db import transaction

    _, b = worlds
    users = {
        "anonymous": None,
        "outsider": outsider,
        "customer viewer of A": customer_viewer,
        "viewer": viewer,
        "engineer": engineer,
        "senior": senior,
        "admin": UserFactory(username="ada", role=roles.ADMIN),  # by group, not a superuser
    }
    clients = {who: _clients(user)[1] for who, user in users.items()}
    failures, table = [], []
    for key, route in sorted(write_endpoints().items()):
        name, method = key
        kwargs = BUILDERS[name](b) if name in BUILDERS else {}
        url = reverse(name, kwargs=kwargs)
        body = ROLE_PAYLOADS[key](b) if key in ROLE_PAYLOADS else {}
        row = []
        for who, client in clients.items():
            with transaction.atomic():
                status = getattr(client, method)(url, body, format="json").status_code
                transaction.set_rollback(True)  # the next role meets the same world
            row.append(f"{who}={status}")
            if status not in _expected(key, who, bool(kwargs)):
                failures.append(
                    f"{who}: {method.upper()} {url} ({name}, least role {ROLE_TABLE.get(key)}) -> {status}, "
                    f"expected {sorted(_expected(key, who, bool(kwargs)))}"
                )
        table.append(f"{method.upper():6} {_schema_path(route)}: {' '.join(row)}")
    report_figures(
        "isolation matrix (role matrix)",
        f"role matrix: {len(table)} write endpoints x {len(users)} roles = {len(table) * len(users)} requests\n"
        + "\n".join(table),
    )
    assert not failures, "\n".join(failures)


def test_engineer_delete_of_a_customer_is_refused_and_removes_nothing(worlds, engineer):
    _, b = worlds
    api = _clients(engineer)[1]
    customer = b.customer
    held = {
        "assets": set(customer.assets.values_list("pk", flat=True)),
        "mitigations": set(customer.mitigations.values_list("pk", flat=True)),
        "tickets": set(customer.tickets.values_list("pk", flat=True)),
        "attacks": set(customer.attacks.values_list("pk", flat=True)),
    }
    assert all(held.values()), held
    response = api.delete(reverse("api:customer-detail", args=[customer.slug]))
    assert response.status_code == 403
    assert "admin" in response.json()["detail"]
    assert api.delete(reverse("api:asset-detail", args=[b.asset.pk])).status_code == 403
    customer = Customer.objects.get(pk=customer.pk)
    assert set(customer.assets.values_list("pk", flat=True)) == held["assets"]
    assert set(customer.mitigations.values_list("pk", flat=True)) == held["mitigations"]
    assert set(customer.tickets.values_list("pk", flat=True)) == held["tickets"]
    assert set(customer.attacks.values_list("pk", flat=True)) == held["attacks"]
    assert not AuditEvent.objects.filter(action__in=("customer.delete", "asset.delete")).exists()
