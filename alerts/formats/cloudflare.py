"""Cloudflare notification webhooks (the "generic webhook" destination).

One delivery is one notification: an envelope (``name``, ``text``, ``ts``,
``account_id``, ``policy_id``, ``alert_type``, ``alert_correlation_id``,
``alert_event``) around a type-specific ``data`` object. DDoS notifications come as an
``ALERT_STATE_EVENT_START`` and, when the attack stops, an ``ALERT_STATE_EVENT_END``
with the same ``alert_correlation_id``; both map to the same fingerprint so the END
closes the alert the START opened.

Severity, by ``alert_type`` (then raised by the attack's size):

==================================  =========  ==================================
alert_type                          base       raised to high / critical when
==================================  =========  ==================================
advanced_ddos_attack_l4_alert       high       critical at >= 10 Mpps or >= 100 Gbps
advanced_ddos_attack_l7_alert       high       critical at >= 1 M rps
fbm_dosd_attack (Magic Network Mon) high       critical as for L4
dos_attack_l4 (managed ruleset)     medium     high at >= 1 Mpps or >= 10 Gbps, critical as above
dos_attack_l7 (managed ruleset)     medium     high at >= 100 k rps, critical at >= 1 M rps
fbm_volumetric_attack               medium     as dos_attack_l4
any other type                      ``data.severity`` if given, else info
==================================  =========  ==================================

Tunnel health (``tunnel_health_event``, ``magic_tunnel_health_check_event``) is an L3
``tunnel_health`` alert, high when the tunnel is down, ended by an END event or a report
back to healthy; ``bgp_hijack_notification`` is a critical L3 ``bgp_hijack`` on the
prefix, with the hijacker's origin AS as the source. The account and zone ids
(``account_id``, ``data.zone_tag``) are matched to customers through their assets of
kind "Cloudflare account id" / "Cloudflare zone id".

The advanced (Enterprise) alerts fire for attacks against a customer's own prefixes or
adaptive-profile deviations, which an engineer looks at first; the managed-ruleset
alerts are usually already mitigated at the edge.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ._common import (
    DESCRIPTION_MAX,
    TITLE_MAX,
    clean,
    clean_labels,
    first_text,
    flood_vector,
    load_json_object,
    max_severity,
    parse_rate,
    parse_time,
    severity_word,
    slug,
    to_asn,
    to_float,
    to_ip,
    to_port,
)
from .base import ParsedAlert, ParseError, ParseResult, make_fingerprint

L4_TYPES = {"dos_attack_l4", "advanced_ddos_attack_l4_alert", "fbm_dosd_attack", "fbm_volumetric_attack"}
L7_TYPES = {"dos_attack_l7", "advanced_ddos_attack_l7_alert"}
DDOS_TYPES = L4_TYPES | L7_TYPES
BASE_SEVERITY = {
    "advanced_ddos_attack_l4_alert": "high",
    "advanced_ddos_attack_l7_alert": "high",
    "fbm_dosd_attack": "high",
    "dos_attack_l4": "medium",
    "dos_attack_l7": "medium",
    "fbm_volumetric_attack": "medium",
}
TITLES = {
    "advanced_ddos_attack_l4_alert": "Advanced L3/4 DDoS attack",
    "advanced_ddos_attack_l7_alert": "Advanced HTTP DDoS attack",
    "dos_attack_l4": "L3/4 DDoS attack",
    "dos_attack_l7": "HTTP DDoS attack",
    "fbm_dosd_attack": "Magic Network Monitoring DDoS attack",
    "fbm_volumetric_attack": "Magic Network Monitoring volumetric attack",
}
END_EVENTS = {"ALERT_STATE_EVENT_END", "END", "RESOLVED"}
# Cloudflare Tunnel and Magic (WAN) IPsec/GRE tunnel health; BGP origin hijack of a prefix.
TUNNEL_TYPES = {"tunnel_health_event", "magic_tunnel_health_check_event"}
BGP_TYPES = {"bgp_hijack_notification"}
TITLES_OTHER = {
    "tunnel_health_event": "Cloudflare Tunnel health",
    "magic_tunnel_health_check_event": "Tunnel health check below SLO",
    "bgp_hijack_notification": "BGP hijack of a protected prefix",
}
# A tunnel reported back to health ends the alert its degraded report opened.
_HEALTHY = {"healthy", "tunnel_status_type_healthy", "up"}
_DOWN = {"down", "tunnel_status_type_down", "unhealthy"}


def parse(body: bytes, options: Mapping[str, Any]) -> ParseResult:
    """Read one Cloudflare notification webhook into one alert."""
    payload = load_json_object(body, "a Cloudflare notification")
    return ParseResult(alerts=[parse_notification(payload)])


def parse_notification(payload: dict[str, Any]) -> ParsedAlert:
    """One notification envelope as an alert (DDoS types fully, others generically)."""
    data = payload.get("data")
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ParseError("field `data` must be an object")
    alert_type = clean(payload.get("alert_type"), 100) or clean(data.get("alert_type"), 100)
    if not alert_type and not any(k in payload for k in ("name", "text", "data", "alert_event")):
        raise ParseError("not a Cloudflare notification: none of `alert_type`, `name`, `text`, `data` is present")
    event = clean(payload.get("alert_event"), 100).upper()
    resolved = event in END_EVENTS

    is_l7 = alert_type in L7_TYPES
    is_ddos = alert_type in DDOS_TYPES
    attack_kind = first_text(data, "attack_vector", "attack_type", limit=200)
    protocol = clean(data.get("protocol"), 50)

    pps = to_float(data.get("packets_per_second"))
    mbps = to_float(data.get("megabits_per_second"))
    bps = mbps * 1_000_000 if mbps is not None else None
    rps = to_float(data.get("requests_per_second"))
    # "800.00 pps" / "12.5K rps" / "3 Gbps": the only rate some alerts carry
    rate, kind = parse_rate(clean(data.get("max_rate"), 100))
    if rate is not None:
        kind = kind or ("rps" if is_l7 else "pps")
        if kind == "pps" and pps is None:
            pps = rate
        elif kind == "bps" and bps is None:
            bps = rate
        elif kind == "rps" and rps is None:
            rps = rate

    is_tunnel, is_bgp = alert_type in TUNNEL_TYPES, alert_type in BGP_TYPES
    status = first_text(data, "new_health", "new_status", "status", "tunnel_status", limit=60).lower()
    if is_tunnel and status in _HEALTHY:
        resolved = True

    if is_l7:
        # Every HTTP DDoS alert is a request flood to us; the precise attack_type
        # ("HTTP Flood", "Cache busting", ...) stays in the labels.
        layer, vector = "L7", "http_flood"
    elif is_ddos:
        layer = "L4"
        vector = flood_vector(attack_kind, protocol) or (slug(attack_kind) if attack_kind else "unknown")
    elif is_tunnel:
        layer, vector = "L3", "tunnel_health"
    elif is_bgp:
        layer, vector = "L3", "bgp_hijack"
    else:
        layer = "L7" if data.get("zone_name") or data.get("target_hostname") else "L4"
        vector = f"cloudflare_{slug(alert_type)}" if alert_type else "unknown"
    if vector in ("ip_fragmentation", "icmp_flood", "gre_flood") and layer == "L4":
        layer = "L3"

    severity = _severity(alert_type, data, pps=pps, bps=bps, rps=rps)
    if is_bgp:
        severity = "critical"  # someone else originates the customer's prefix: traffic is leaving
    elif is_tunnel:
        severity = "high" if status in _DOWN else "medium"

    target_ip = to_ip(data.get("target_ip"))
    target_host = first_text(
        data,
        "target_hostname",
        "target_zone_name",
        "zone_name",
        "hostnames",
        "origin_ip",
        "prefix",
        "hijacked_prefix",
        "tunnel_name",
        "tunnel_id",
    )
    if not target_ip and not target_host:
        # keep what Cloudflare named as the target even when it is not an address (a prefix, a placeholder)
        target_host = clean(data.get("target_ip"))
    zone = first_text(data, "zone_name", "target_zone_name", "zone_tag", "account_name", "account_tag") or clean(
        payload.get("account_id")
    )
    attack_id = first_text(data, "attack_id", "incident_id", "health_check_id", "certificate_id", "tunnel_id")
    correlation = clean(payload.get("alert_correlation_id"), 200)
    if correlation:
        # The alert type too: START and END of one alert share both, while two different
        # notifications are never folded even if a sender reuses a correlation id.
        fingerprint = make_fingerprint("cloudflare", alert_type, correlation)
    else:
        fingerprint = make_fingerprint(
            "cloudflare", alert_type, zone, target_ip or target_host, data.get("target_port"), attack_id
        )

    title = (
        TITLES.get(alert_type)
        or TITLES_OTHER.get(alert_type)
        or clean(payload.get("name"), TITLE_MAX)
        or f"Cloudflare {alert_type or 'notification'}"
    )
    if attack_kind and is_ddos:
        title = f"{title}: {attack_kind}"
    target = target_host or target_ip
    if target:
        title = f"{title} on {target}"

    labels = clean_labels(data, "data")
    for key in ("alert_type", "alert_event", "account_id", "policy_id", "policy_name", "alert_correlation_id"):
        value = clean(payload.get(key), 2_000)
        if value:
            labels[key] = value

    event_time = parse_time(data.get("start_time")) or parse_time(payload.get("ts"))
    owner_ids = {
        "cf_account": clean(payload.get("account_id"), 64) or clean(data.get("account_tag"), 64),
        "cf_zone": clean(data.get("zone_tag"), 64),
    }
    hijacker = to_asn(first_text(data, "hijacker_asn", "origin_asn", "new_origin_asn", "hijacker_origin_asn"))
    if target_ip or target_host:
        rule = f"Cloudflare data names the target ({'target_ip' if target_ip else 'host, zone, prefix or tunnel'})"
    else:
        rule = "the notification names no target: unknown"
    return ParsedAlert(
        fingerprint=fingerprint,
        title=clean(title, TITLE_MAX),
        layer=layer,
        vector=vector or "unknown",
        severity=severity,
        external_id=attack_id or correlation,
        event_time=event_time,
        ended_at=(parse_time(data.get("end_time")) or parse_time(payload.get("ts"))) if resolved else None,
        resolved=resolved,
        target_ip=target_ip,
        target_port=to_port(data.get("target_port")),
        target_host=target_host,
        zone=zone,
        pps=pps,
        bps=bps,
        rps=rps,
        labels=labels,
        description=clean(payload.get("text"), DESCRIPTION_MAX),
        raw=payload,
        owner_ids={kind: value for kind, value in owner_ids.items() if value},
        source_asns=[hijacker] if is_bgp and hijacker is not None else [],
        direction_rule=rule,
    )


def _severity(alert_type: str, data: dict[str, Any], *, pps: float | None, bps: float | None, rps: float | None) -> str:
    base = BASE_SEVERITY.get(alert_type)
    if base is None:
        return severity_word(data.get("severity")) or severity_word(data.get("alert_priority_level")) or "info"
    levels = [base]
    if (pps or 0) >= 10_000_000 or (bps or 0) >= 100e9 or (rps or 0) >= 1_000_000:
        levels.append("critical")
    elif (pps or 0) >= 1_000_000 or (bps or 0) >= 10e9 or (rps or 0) >= 100_000:
        levels.append("high")
    return max_severity(*levels)
