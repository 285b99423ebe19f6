"""What a report says, read from every app: attacks and alerts, traffic samples, mitigations, tickets.

The result is plain JSON-able data (``figures``): the HTML, the PDF, the CSV and the
JSON export are all made from it, so each shows the same numbers. Times are given in
UTC (ISO) and in the customer's time zone. Tickets and mitigations are read only when
their apps are installed; from a ticket, only customer-facing timeline entries are read.
"""

from __future__ import annotations

import math
import zoneinfo
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from django.db.models import Count, Max, Min, Q, Sum
from django.utils import timezone

from alerts.models import Alert, Attack
from console.models import Asset, Customer
from mitigations import selectors as mitigation_selectors
from reports import charts, text
from tickets import selectors as ticket_selectors
from traffic import selectors as traffic_selectors

ALERT_ROWS_CAP = 20_000  # alerts read row by row (sources, timeline); aggregates use the database
TOP = 10
# An alert of a flood may name thousands of sources; these are enough to place it.
GEO_ADDRESSES_PER_ALERT = 20
EFFECT_WINDOW = timedelta(minutes=10)


def _network_label(asn: Any, name: Any) -> tuple[str | None, int | None]:
    """ "AS15169 GOOGLE", "AS64500" or the name alone, with the number when there is one."""
    number = int(asn) if str(asn or "").isdigit() else None
    label = " ".join(part for part in (f"AS{number}" if number else "", str(name or "").strip()) if part)
    return label or None, number


@dataclass(frozen=True)
class _AlertPlaces:
    countries: set[str]
    networks: dict[str, int | None]  # label -> AS number
    located_countries: bool
    located_networks: bool
    addresses: int


def _alert_places(source_ips: Any, source_asns: Any, source_countries: Any) -> _AlertPlaces:
    """One alert's countries and networks, for the alert page and every report alike: the sender's
    where it named them, else our offline geolocation of its first source addresses."""
    from traffic import geo

    addresses = sorted(set(source_ips or []))
    countries = {str(c).upper() for c in source_countries or [] if c}
    networks = dict(label_number for a in source_asns or [] if (label_number := _network_label(a, None))[0])
    located_countries = located_networks = False
    if addresses and not (countries and networks):
        places = [geo.lookup(ip) for ip in addresses[:GEO_ADDRESSES_PER_ALERT]]
        if not countries:
            countries = {p["country"] for p in places if p["country"]}
            located_countries = bool(countries)
        if not networks:
            networks = dict(
                label_number for p in places if (label_number := _network_label(p.get("asn"), p.get("as_name")))[0]
            )
            located_networks = bool(networks)
    return _AlertPlaces(countries, networks, located_countries, located_networks, len(addresses))


def zone_of(customer: Customer | None) -> zoneinfo.ZoneInfo:
    try:
        return zoneinfo.ZoneInfo(customer.timezone if customer else "UTC")
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        return zoneinfo.ZoneInfo("UTC")


def _iso(moment: datetime | None) -> str | None:
    return moment.astimezone(UTC).isoformat() if moment else None


def _local(moment: datetime | None, tz: zoneinfo.ZoneInfo) -> str | None:
    """Local wall time without offset: what a chart's date axis shows as is."""
    return moment.astimezone(tz).strftime("%Y-%m-%d %H:%M:%S") if moment else None


def _stamp(moment: datetime | None, tz: zoneinfo.ZoneInfo) -> str | None:
    return text.stamp(moment.astimezone(tz)) if moment else None


def _target(row: dict[str, Any]) -> tuple[str, str, int | None]:
    ip, port, host, zone = row["target_ip"], row["target_port"], row["target_host"], row["zone"]
    if ip:
        return (f"{ip}:{port}" if port else ip), ip, port
    name = host or zone or ""
    return name, name, port


def _mitigation_words(m: Any) -> str:
    """The mitigation in a customer's words: kind, action and what it is about."""
    kind = m.get_kind_display().split(" (")[0]
    action = m.get_action_display()
    if m.kind == "ip_access" and m.value:
        return f"{kind}: {action.lower()} {m.value}"
    if m.kind == "rate_limit" and m.rate:
        rate = m.rate
        if rate.get("requests") and rate.get("period"):
            return f"{kind}: {rate['requests']} requests per {rate['period']} s per client, then {action.lower()}"
    if m.kind == "ip_list" and m.mitigation_list_id:
        return f"{kind}: {action.lower()} list {m.mitigation_list.name}"
    return f"{kind}: {action.lower()}"


def _effect(packets: int | None, bytes_: int | None, before: float | None, after: float | None) -> str:
    """What the data says a mitigation did: counters from the backends, detector rates around it."""
    parts = []
    if packets:
        parts.append(f"{packets:,} packets matched" + (f" ({text.si(bytes_ * 8, 'b')})" if bytes_ else ""))
    if before is not None or after is not None:
        parts.append(
            f"attack rate seen by detectors {text.si(before, 'bps') if before else 'n/a'} in the 10 min before,"
            f" {text.si(after, 'bps') if after else 'n/a'} in the 10 min after"
        )
    return "; ".join(parts) or "no counters reported"


class _Builder:
    """Gathers one report's figures over a set of attacks of one customer."""

    def __init__(self, customer: Customer, attacks: Sequence[Attack], tz: zoneinfo.ZoneInfo) -> None:
        self.customer = customer
        self.attacks = list(attacks)
        self.ids = [a.pk for a in self.attacks]
        self.tz = tz
        self.alerts = Alert.objects.filter(attack_id__in=self.ids)
        # Everything "ongoing", "ended" and "so far" is as of this moment, the generation time.
        self.now = timezone.now()

    def span_seconds(self, attack: Attack) -> float:
        """How long the attack has lasted: to its end, or to now while it goes on."""
        end = self.now if attack.ongoing else (attack.ended_at or attack.last_seen)
        return max(0.0, (end - attack.started_at).total_seconds())

    # ------------------------------------------------------------------ pieces

    def overview(self, start: datetime | None, end: datetime | None) -> dict[str, Any]:
        agg = self.alerts.aggregate(
            n=Count("id"),
            packets=Sum("packets"),
            bytes=Sum("bytes"),
        )
        peaks: dict[str, Any] = {}
        for metric in ("bps", "pps", "rps"):
            row = (
                self.alerts.filter(**{f"{metric}__isnull": False})
                .order_by(f"-{metric}", "event_time", "id")
                .values(metric, "event_time")
                .first()
            )
            if row and row[metric]:
                peaks[metric] = {"value": row[metric], "at": row["event_time"], "source": "alerts"}
        for metric, value, at in self.sample_peaks():
            if value and (metric not in peaks or value > peaks[metric]["value"]):
                peaks[metric] = {"value": value, "at": at, "source": "traffic sample"}
        for metric, peak in peaks.items():
            at = peak["at"]
            peaks[metric] = {
                "value": peak["value"],
                "label": text.si(peak["value"], metric),
                "at": _iso(at),
                "at_local": _stamp(at, self.tz),
                "source": peak["source"],
            }
        ongoing = any(a.ongoing for a in self.attacks)
        duration = sum(self.span_seconds(a) for a in self.attacks)
        return {
            "attacks": len(self.attacks),
            "alerts": agg["n"],
            "ongoing": ongoing,
            "start": _iso(start),
            "end": _iso(end),
            "start_local": _stamp(start, self.tz),
            "end_local": _stamp(end, self.tz) if end else None,
            "duration_s": duration,
            "duration": text.duration(duration) + (" so far (ongoing)" if ongoing else ""),
            "peaks": peaks,
            "packets": agg["packets"],
            "bytes": agg["bytes"],
            "sampled": self.sample_totals(),
            "dropped_share": None,
            "dropped_packets": None,
        }

    def samples(self) -> list[Any]:
        if not hasattr(self, "_samples"):
            self._samples = traffic_selectors.ready_samples_for_attacks(self.ids)
        return self._samples

    def sample_totals(self) -> dict[str, int]:
        return traffic_selectors.sample_totals(self.samples())

    def sample_series(self) -> Iterable[tuple[str, str, list[tuple[datetime, float]]]]:
        """(name, metric, [(time, value)]) per-second rates of the attached samples."""
        for rate in traffic_selectors.sample_rates(self.samples()):
            if rate.kind == "pcap":
                yield f"capture {rate.sample} ({charts.METRIC_LABELS[rate.metric]})", rate.metric, rate.points
            else:
                yield f"log {rate.sample} (requests/s)", rate.metric, rate.points

    def sample_peaks(self) -> Iterable[tuple[str, float, datetime]]:
        for _, metric, points in self.sample_series():
            at, value = max(points, key=lambda p: (p[1], -p[0].timestamp()))
            yield metric, value, at

    def vectors(self) -> list[dict[str, Any]]:
        rows = list(
            self.alerts.values("vector")
            .annotate(n=Count("id"), bps=Max("bps"), pps=Max("pps"), rps=Max("rps"), first=Min("event_time"))
            .order_by("-n", "vector")
        )
        total = sum(r["n"] for r in rows) or 1
        return [
            {
                "vector": r["vector"],
                "title": text.vector_title(r["vector"]),
                "alerts": r["n"],
                "share": r["n"] / total,
                "share_label": f"{text.percent(r['n'] / total)}%",
                "peak_bps": r["bps"],
                "peak_pps": r["pps"],
                "peak_rps": r["rps"],
                "peak_label": " · ".join(text.si(r[m], m) for m in ("bps", "pps", "rps") if r[m]) or "—",
                "first_seen": _iso(r["first"]),
                "first_seen_local": _stamp(r["first"], self.tz),
            }
            for r in rows
        ]

    def targets(self) -> list[dict[str, Any]]:
        rows = (
            self.alerts.values("target_ip", "target_port", "target_host", "zone")
            .annotate(n=Count("id"), bps=Max("bps"), pps=Max("pps"), rps=Max("rps"))
            .order_by("-n")[:200]
        )
        merged: dict[str, dict[str, Any]] = {}
        for r in rows:
            name, host, port = _target(r)
            if not name:
                continue
            t = merged.setdefault(
                name,
                {
                    "target": name,
                    "host": host,
                    "port": port,
                    "alerts": 0,
                    "peak_bps": None,
                    "peak_pps": None,
                    "peak_rps": None,
                },
            )
            t["alerts"] += r["n"]
            for m in ("bps", "pps", "rps"):
                if r[m] is not None:
                    t[f"peak_{m}"] = max(t[f"peak_{m}"] or 0, r[m])
        if not merged:
            for a in self.attacks:
                merged.setdefault(
                    a.target,
                    {
                        "target": a.target,
                        "host": a.target,
                        "port": None,
                        "alerts": a.alert_count,
                        "peak_bps": a.peak_bps,
                        "peak_pps": a.peak_pps,
                        "peak_rps": a.peak_rps,
                    },
                )
        out = sorted(merged.values(), key=lambda t: (-t["alerts"], t["target"]))[:20]
        for t in out:
            t["size"] = " · ".join(text.si(t[f"peak_{m}"], m) for m in ("bps", "pps", "rps") if t[f"peak_{m}"]) or "—"
        return out

    def sources(self) -> dict[str, Any]:
        """Top source IPs, networks and countries: alerts naming each, and what the samples counted.

        A country or network comes from the sender when its alert carries one; otherwise from our
        offline geolocation of the alert's source addresses (``traffic.geo``), and ``located`` says
        so, because a spoofed address is located where it is registered, not where the attacker is.
        A capture's sources come from its victim-side analysis, a log's from its own columns.
        """
        ips: Counter[str] = Counter()
        networks: Counter[str] = Counter()
        asn_of: dict[str, int | None] = {}
        countries: Counter[str] = Counter()
        located = 0

        def network(asn: Any, name: Any) -> str | None:
            label, number = _network_label(asn, name)
            if label:
                asn_of.setdefault(label, number)
            return label

        rows = self.alerts.order_by("event_time", "id").values_list("source_ips", "source_asns", "source_countries")
        for source_ips, source_asns, source_countries in rows[:ALERT_ROWS_CAP]:
            ips.update(set(source_ips or []))
            places = _alert_places(source_ips, source_asns, source_countries)
            located += places.located_countries
            for label, number in places.networks.items():
                asn_of.setdefault(label, number)
            countries.update(places.countries)
            networks.update(places.networks.keys())

        sampled_ips: Counter[str] = Counter()
        sampled_networks: Counter[str] = Counter()
        sampled_countries: Counter[str] = Counter()
        for s in self.samples():
            summary = s.summary or {}
            for row in summary.get("top_sources") or []:
                sampled_ips[row["ip"]] += int(row.get("packets") or 0)
            for row in summary.get("top_ips") or []:
                sampled_ips[str(row["value"])] += int(row.get("requests") or 0)
            for row in summary.get("top_asns") or []:
                if label := network(row.get("value"), None):
                    sampled_networks[label] += int(row.get("requests") or 0)
            for row in summary.get("top_countries") or []:
                if row.get("value"):
                    sampled_countries[str(row["value"]).upper()] += int(row.get("requests") or 0)
            capture_geo = (summary.get("direction") or {}).get("source_geo") or {}
            for row in capture_geo.get("countries") or []:
                if row.get("value") and row["value"] != "unknown":
                    sampled_countries[str(row["value"]).upper()] += int(row.get("packets") or 0)
            for row in capture_geo.get("asns") or []:
                if row.get("value") and row["value"] != "unknown":
                    label = str(row["value"]).strip()
                    asn_of.setdefault(label, None)
                    sampled_networks[label] += int(row.get("packets") or 0)

        def ranked(alerts: Counter, sampled: Counter, key: str) -> list[dict[str, Any]]:
            names = set(alerts) | set(sampled)
            order = sorted(names, key=lambda n: (-alerts[n], -sampled[n], str(n)))[:TOP]
            return [{key: n, "alerts": alerts[n], "sampled": sampled[n]} for n in order]

        top_networks = ranked(networks, sampled_networks, "network")
        for row in top_networks:
            row["asn"] = asn_of.get(row["network"])
        return {
            "top_ips": ranked(ips, sampled_ips, "ip"),
            "top_asns": top_networks,
            "top_countries": ranked(countries, sampled_countries, "country"),
            "located_alerts": located,
        }

    def chart_window(self, start: datetime | None, end: datetime | None) -> tuple[datetime, datetime] | None:
        """The incident window the charts are drawn in: start to end, or to now while ongoing."""
        if start is None:
            return None
        stop = end or self.now
        return start, max(stop, start + timedelta(minutes=1))

    def alert_series(self, start: datetime | None = None, end: datetime | None = None) -> dict[str, dict[str, Any]]:
        """Per-minute maximum of each metric the alerts report, in local time, over the incident window.

        An alert states its rate from its event time to its last repeat, so it fills each
        minute of that span; a minute no alert covers is a gap (unknown), not a zero.
        Sample points outside the window (a capture of another day) are left out.
        """
        window = self.chart_window(start, end)
        per_minute: dict[str, dict[datetime, float]] = {"bps": {}, "pps": {}, "rps": {}}
        rows = (
            self.alerts.filter(Q(bps__isnull=False) | Q(pps__isnull=False) | Q(rps__isnull=False))
            .order_by("event_time", "id")
            .values_list("event_time", "last_seen", "bps", "pps", "rps")
        )
        step = timedelta(minutes=1)
        if window:
            # At most about 3,000 points a line: a minute each, unless the window is longer than two days.
            minutes = max(1, math.ceil((window[1] - window[0]).total_seconds() / 60 / 3000))
            step = timedelta(minutes=minutes)
        base = window[0].replace(second=0, microsecond=0) if window else None

        def bucket(moment: datetime) -> datetime:
            if base is None:
                return moment.replace(second=0, microsecond=0)
            return base + step * ((moment - base) // step)

        for at, last_seen, bps, pps, rps in rows[:ALERT_ROWS_CAP]:
            first = at
            last = max(at, last_seen or at)
            if window:
                if last < window[0] or first > window[1]:
                    continue
                first, last = max(first, window[0]), min(last, window[1])
            moment = bucket(first)
            covered = []
            while moment <= last and len(covered) < 3000:
                covered.append(moment)
                moment += step
            for metric, value in (("bps", bps), ("pps", pps), ("rps", rps)):
                if value is None:
                    continue
                points = per_minute[metric]
                for minute in covered:
                    points[minute] = max(points.get(minute, 0.0), value)
        series = {}
        for metric, points in per_minute.items():
            if not points:
                continue
            times = sorted(points)
            grid = []
            moment = times[0]
            while moment <= times[-1]:
                grid.append(moment)
                moment += step
            series[f"attack {charts.METRIC_LABELS[metric]} (alerts)"] = {
                "metric": metric,
                "x": [_local(t, self.tz) for t in grid],
                "y": [points.get(t) for t in grid],
            }
        self.outside_window = []
        for name, metric, points in self.sample_series():
            inside = [(t, v) for t, v in points if not window or window[0] <= t <= window[1]]
            if not inside:
                sample = name.rsplit(" (", 1)[0]
                if sample not in self.outside_window:
                    self.outside_window.append(sample)
                continue
            series[name] = {
                "metric": metric,
                "x": [_local(t, self.tz) for t, _ in inside],
                "y": [v for _, v in inside],
                "mode": "lines",
            }
        return series

    def mitigations(
        self, tickets: Sequence[Any], start: datetime | None, end: datetime | None = None
    ) -> list[dict[str, Any]]:
        """The ledger's mitigations for this report: those made for its attacks or tickets, and
        every other mitigation of the customer that was in force during the period."""
        rows = mitigation_selectors.applied_for_report(
            customer=self.customer,
            attack_ids=self.ids,
            ticket_ids=[t.pk for t in tickets],
            start=start,
            end=end or self.now,
        )
        out = []
        for n, m in enumerate(rows, start=1):
            packets, bytes_ = mitigation_selectors.hit_counters(m)
            window = self.alerts.filter(bps__isnull=False)
            before = window.filter(event_time__gte=m.applied_at - EFFECT_WINDOW, event_time__lt=m.applied_at).aggregate(
                v=Max("bps")
            )["v"]
            after = window.filter(event_time__gte=m.applied_at, event_time__lt=m.applied_at + EFFECT_WINDOW).aggregate(
                v=Max("bps")
            )["v"]
            # Active as of the generation time: the ledger's state, and not past its time to live.
            active = m.state == "active" and (m.expires_at is None or m.expires_at > self.now)
            ended = m.ended_at or (m.expires_at if m.state == "active" and not active else None)
            if not active and ended is None:
                ended = m.expires_at
            out.append(
                {
                    "label": f"M{n}",
                    "title": m.title,
                    "what": _mitigation_words(m),
                    "kind": m.kind,
                    "action": m.action,
                    "state": m.get_state_display(),
                    "status": "active" if active else "ended",
                    "targets": ", ".join(str(t) for t in m.targets or []) or "—",
                    "applied_at": _iso(m.applied_at),
                    "applied_local": _stamp(m.applied_at, self.tz),
                    "applied_chart": _local(m.applied_at, self.tz),
                    "applied_clock": f"{m.applied_at.astimezone(self.tz):%H:%M %Z}",
                    "after_start_s": (m.applied_at - start).total_seconds() if start else None,
                    "expires_local": _stamp(m.expires_at, self.tz) if active else None,
                    "until": _iso(ended) if not active else None,
                    "until_local": _stamp(ended, self.tz) if not active else None,
                    "active": active,
                    "matched_packets": packets,
                    "matched_bytes": bytes_,
                    "before_bps": before,
                    "after_bps": after,
                    "effect": _effect(packets, bytes_, before, after),
                }
            )
        return out

    def ticket_facts(self, tickets: Sequence[Any]) -> list[dict[str, Any]]:
        """Each ticket's number, status, resolution time and outcome, as of the generation time."""
        out = []
        for t in tickets:
            resolved = t.resolved_at if t.status in ("resolved", "closed") else None
            out.append(
                {
                    "number": t.number,
                    "status": t.status,
                    "status_label": t.get_status_display(),
                    "resolved": resolved is not None,
                    "resolved_at": _iso(resolved),
                    "resolved_local": _stamp(resolved, self.tz),
                    "resolved_clock": f"{resolved.astimezone(self.tz):%H:%M %Z}" if resolved else None,
                    "outcome": t.outcome,
                    "outcome_label": t.get_outcome_display() if t.outcome else "",
                }
            )
        return out

    def customer_ticket_events(self, tickets: Sequence[Any]) -> list[dict[str, Any]]:
        """The customer-facing entries of the tickets' timelines. Internal entries are never read."""
        return [
            {
                "at": _iso(e["at"]),
                "at_local": _stamp(e["at"], self.tz),
                "source": e["ticket"],
                "what": e["what"],
                "detail": e["body"],
            }
            for e in ticket_selectors.customer_timeline(tickets)
        ]

    def recommendations(self, vectors: list[dict[str, Any]], targets: list[dict[str, Any]]) -> list[dict[str, str]]:
        paths = traffic_selectors.sample_top_paths(self.samples())
        spectrum_ports = []
        for value in Asset.objects.filter(customer=self.customer, kind="spectrum").values_list("value", flat=True):
            port = value.rpartition(":")[2]
            if port.isdigit():
                spectrum_ports.append(int(port))
        return text.recommendations(
            [v["vector"] for v in vectors], targets, hot_paths=paths[:2], spectrum_ports=spectrum_ports
        )

    def peaks_table(self) -> list[dict[str, Any]]:
        rows = []
        for a in sorted(
            self.attacks, key=lambda a: (-(a.peak_bps or 0), -(a.peak_pps or 0), -(a.peak_rps or 0), a.started_at)
        )[:50]:
            start = a.started_at.astimezone(self.tz)
            end = a.ended_at or a.last_seen
            rows.append(
                {
                    "attack": a.pk,
                    "target": a.target,
                    "vectors": list(a.vectors or []),
                    "vector_titles": ", ".join(text.vector_title(v) for v in a.vectors or []),
                    "start": _iso(a.started_at),
                    "start_local": _stamp(a.started_at, self.tz),
                    "start_day": text.day(start),
                    "start_clock": f"{start:%H:%M %Z}",
                    "end_local": _stamp(end, self.tz),
                    "ongoing": a.ongoing,
                    "duration_s": self.span_seconds(a),
                    "duration": text.duration(self.span_seconds(a)) + (" so far" if a.ongoing else ""),
                    "peak_bps": a.peak_bps,
                    "peak_pps": a.peak_pps,
                    "peak_rps": a.peak_rps,
                    "peak_bps_label": text.si(a.peak_bps, "bps") if a.peak_bps else "—",
                    "peak_pps_label": text.si(a.peak_pps, "pps") if a.peak_pps else "—",
                    "peak_rps_label": text.si(a.peak_rps, "rps") if a.peak_rps else "—",
                    "peak_at_local": _stamp(a.peak_at, self.tz),
                    "alerts": a.alert_count,
                }
            )
        return rows

    def alert_events(self) -> list[dict[str, Any]]:
        """The first alert of each vector of each attack: when detection saw what."""
        rows = (
            self.alerts.values("attack_id", "vector")
            .annotate(first=Min("event_time"), n=Count("id"))
            .order_by("first", "vector")[:100]
        )
        return [
            {
                "at": _iso(r["first"]),
                "at_local": _stamp(r["first"], self.tz),
                "source": "detection",
                "what": f"{text.vector_title(r['vector'])} detected",
                "detail": f"{r['n']} alert{'s' if r['n'] != 1 else ''}",
            }
            for r in rows
        ]

    # ------------------------------------------------------------------ whole

    def figures(
        self, *, kind: str, title: str, tickets: Sequence[Any], start: datetime | None, end: datetime | None
    ) -> dict[str, Any]:
        overview = self.overview(start, end)
        vectors = self.vectors()
        targets = self.targets()
        mitigations = self.mitigations(tickets, start, end)
        matched = sum(m["matched_packets"] or 0 for m in mitigations)
        if matched and overview["packets"]:
            overview["dropped_packets"] = matched
            overview["dropped_share"] = min(1.0, matched / overview["packets"])
        timeline = self.alert_events()
        for peak_metric, peak in overview["peaks"].items():
            timeline.append(
                {
                    "at": peak["at"],
                    "at_local": peak["at_local"],
                    "source": "detection",
                    "what": f"Peak of {peak['label']}",
                    "detail": f"from {peak['source']}",
                    "_order": peak_metric,
                }
            )
        for m in mitigations:
            timeline.append(
                {
                    "at": m["applied_at"],
                    "at_local": m["applied_local"],
                    "source": "mitigation",
                    "what": f"{m['label']} applied",
                    "detail": m["what"],
                }
            )
            if m["until"] and not m["active"]:
                timeline.append(
                    {
                        "at": m["until"],
                        "at_local": m["until_local"],
                        "source": "mitigation",
                        "what": f"{m['label']} ended",
                        "detail": m["state"],
                    }
                )
        timeline += self.customer_ticket_events(tickets)
        ticket_facts = self.ticket_facts(tickets)
        for t in ticket_facts:
            if t["resolved"]:
                timeline.append(
                    {
                        "at": t["resolved_at"],
                        "at_local": t["resolved_local"],
                        "source": "ticket",
                        "what": f"{t['number']} resolved",
                        "detail": f"outcome: {t['outcome_label'].lower()}" if t["outcome_label"] else "",
                    }
                )
        for a in self.attacks:
            if not a.ongoing and (a.ended_at or a.last_seen):
                end_at = a.ended_at or a.last_seen
                timeline.append(
                    {
                        "at": _iso(end_at),
                        "at_local": _stamp(end_at, self.tz),
                        "source": "detection",
                        "what": f"Attack on {a.target} ended",
                        "detail": "",
                    }
                )
        timeline.sort(key=lambda e: (e["at"] or "", e.get("_order", "")))
        for e in timeline:
            e.pop("_order", None)
        sources = self.sources()
        figures: dict[str, Any] = {
            "version": 1,
            "report": {
                "kind": kind,
                "title": title,
                "customer": {"name": self.customer.name, "slug": self.customer.slug},
                "timezone": str(self.tz.key),
                "period_start": _iso(start),
                "period_end": _iso(end),
                "period_start_local": _stamp(start, self.tz),
                "period_end_local": _stamp(end, self.tz),
                "generated_at": _iso(timezone.now()),
                "generated_local": _stamp(timezone.now(), self.tz),
            },
            "overview": overview,
            "vectors": vectors,
            "targets": targets,
            "peaks_table": self.peaks_table(),
            **sources,
            "mitigations": mitigations,
            "tickets": ticket_facts,
            "timeline": timeline[:400],
            "recommendations": self.recommendations(vectors, targets),
        }
        window = self.chart_window(start, end)
        x_range = (_local(window[0], self.tz), _local(window[1], self.tz)) if window else None
        markers = [
            {"x": m["applied_chart"], "label": m["label"]}
            for m in mitigations
            if not window or window[0] <= datetime.fromisoformat(m["applied_at"]) <= window[1]
        ]
        series = self.alert_series(start, end)
        figures["chart_notes"] = [
            f"{name} lies outside the incident window and is not drawn." for name in self.outside_window
        ]
        figures["charts"] = {
            "traffic": charts.traffic_timeline(series, markers, zone=str(self.tz.key), x_range=x_range),
            "vectors": charts.vector_pie(vectors, title="Vectors (share of alerts)"),
            "countries": charts.bars(
                [c["country"] for c in sources["top_countries"]],
                [c["alerts"] or c["sampled"] for c in sources["top_countries"]],
                title="Top source countries",
                axis="alerts naming the country",
                horizontal=True,
                color="#8e4ec6",
            ),
            "asns": charts.bars(
                [a["network"] for a in sources["top_asns"]],
                [a["alerts"] or a["sampled"] for a in sources["top_asns"]],
                title="Top source networks (ASN)",
                axis="alerts naming the network",
                horizontal=True,
                color="#12a594",
            ),
        }
        return figures


def _tickets_for_attacks(ids: Sequence[int]) -> list[Any]:
    return ticket_selectors.tickets_for_attacks(ids)


def _what(vectors: list[str]) -> str:
    """ "a UDP amplification attack (DNS)" -> "UDP amplification attack (DNS)", for a title."""
    phrase = text.attack_phrase(vectors)
    return phrase.removeprefix("an ").removeprefix("a ")


def attack_report_data(attack: Attack, *, tz: zoneinfo.ZoneInfo | None = None) -> dict[str, Any]:
    """Everything a report says about one attack: span, peaks, totals, vectors, targets, sources,
    mitigations with their effect, the timeline (alerts, customer-facing ticket events,
    mitigations) and recommendations, with the charts built from the same data."""
    customer = attack.customer
    tz = tz or zone_of(customer)
    tickets = _tickets_for_attacks([attack.pk])
    builder = _Builder(customer, [attack], tz)
    end = None if attack.ongoing else (attack.ended_at or attack.last_seen)
    figures = builder.figures(
        kind="incident",
        title=f"Attack report: {_what(attack.vectors or [])} on {attack.target}",
        tickets=tickets,
        start=attack.started_at,
        end=end,
    )
    figures["report"]["attack"] = attack.pk
    figures["summary"] = text.incident_summary(
        figures, attack.started_at.astimezone(tz), end.astimezone(tz) if end else None
    )
    return figures


def attack_sources(attack: Attack) -> dict[str, Any]:
    """The attack page's source countries and ASNs: the report's own figures (``_Builder.sources``),
    so the page and the report never disagree."""
    return _Builder(attack.customer, [attack], zone_of(attack.customer)).sources()


def alert_sources(alert: Alert) -> dict[str, Any]:
    """One alert's source countries and networks: the sender's where it named them, else the
    offline geolocation of its source addresses (``located`` says which), as reports count them."""
    places = _alert_places(alert.source_ips, alert.source_asns, alert.source_countries)
    return {
        "countries": sorted(places.countries),
        "networks": sorted(places.networks),
        "located": places.located_countries or places.located_networks,
        "addresses": places.addresses,
        "looked_up": min(places.addresses, GEO_ADDRESSES_PER_ALERT),
    }


def ticket_report_data(ticket: Any, *, tz: zoneinfo.ZoneInfo | None = None) -> dict[str, Any]:
    """One incident tracked as a ticket: its attacks together, and its customer-facing timeline."""
    customer = ticket.customer
    tz = tz or zone_of(customer)
    attacks = list(ticket.attacks.order_by("started_at", "id"))
    builder = _Builder(customer, attacks, tz)
    start = min((a.started_at for a in attacks), default=ticket.event_at or ticket.created_at)
    ongoing = any(a.ongoing for a in attacks)
    end = None if ongoing else max((a.ended_at or a.last_seen for a in attacks), default=ticket.resolved_at)
    figures = builder.figures(
        kind="incident", title=f"Incident report {ticket.number}", tickets=[ticket], start=start, end=end
    )
    figures["report"]["ticket"] = ticket.number
    figures["summary"] = text.incident_summary(figures, start.astimezone(tz), end.astimezone(tz) if end else None)
    return figures


def period_report_data(
    customer: Customer, start: datetime, end: datetime, *, tz: zoneinfo.ZoneInfo | None = None
) -> dict[str, Any]:
    """A customer's attacks that began in [start, end): counts, the largest, vectors, sources, mitigations."""
    tz = tz or zone_of(customer)
    attacks = list(
        Attack.objects.filter(customer=customer, started_at__gte=start, started_at__lt=end).order_by(
            "started_at", "id"
        )[:2000]
    )
    tickets = ticket_selectors.tickets_for_period(customer, attack_ids=[a.pk for a in attacks], start=start, end=end)
    builder = _Builder(customer, attacks, tz)
    local_start, local_end = start.astimezone(tz), (end - timedelta(seconds=1)).astimezone(tz)
    figures = builder.figures(
        kind="period",
        title=f"Attack report {text.day(local_start)} – {text.day(local_end)}",
        tickets=tickets,
        start=start,
        end=end,
    )
    # A period's traffic chart: each attack at its peak, not every alert of the month.
    series: dict[str, dict[str, Any]] = {}
    for metric in ("bps", "pps", "rps"):
        points = [
            (a.peak_at or a.started_at, getattr(a, f"peak_{metric}")) for a in attacks if getattr(a, f"peak_{metric}")
        ]
        if points:
            points.sort()
            series[f"attack peak {charts.METRIC_LABELS[metric]}"] = {
                "metric": metric,
                "mode": "markers",
                "x": [_local(t, tz) for t, _ in points],
                "y": [v for _, v in points],
            }
    markers = [
        {"x": m["applied_chart"], "label": m["label"]}
        for m in figures["mitigations"]
        if start <= datetime.fromisoformat(m["applied_at"]) < end
    ]
    figures["charts"]["traffic"] = charts.traffic_timeline(
        series,
        markers,
        zone=str(tz.key),
        title="Attacks in the period (peaks)",
        x_range=(_local(start, tz), _local(end, tz)),
    )
    figures["summary"] = text.period_summary(figures, local_start, local_end)
    return figures


def report_subjects(user: Any, customer: Customer | None = None) -> dict[str, list[Any]]:
    """What a report can be made of, for the generate form: recent attacks and open or recent tickets."""
    attacks = Attack.objects.visible_to(user).select_related("customer").order_by("-started_at", "-id")
    if customer is not None:
        attacks = attacks.filter(customer=customer)
    tickets = ticket_selectors.recent_tickets(user, customer=customer)
    return {"attacks": list(attacks.exclude(customer__isnull=True)[:100]), "tickets": tickets}
