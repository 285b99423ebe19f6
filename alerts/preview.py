"""A delivery parsed with a mapping, without storing anything: what a feed edit page previews.

``delivery_preview`` runs the same steps as ingest up to the upsert (parse with the
given label mapping, orient by the customer's assets, map to a customer) and returns one
plain row per alert, so an engineer sees who is the victim and whose attack it is before
saving a new mapping.
"""

from __future__ import annotations

from typing import Any

from alerts.formats import ParseError, parse_delivery
from alerts.mapping import CustomerMapper
from alerts.models import Delivery, Feed
from console.models import Customer


def delivery_preview(
    *, feed: Feed, body: bytes | Delivery, label_mapping: Any = None, options: dict[str, Any] | None = None
) -> dict[str, Any]:
    """``{"error": str, "alerts": [row, ...]}`` for one delivery parsed with ``label_mapping``.

    ``label_mapping`` and ``options`` default to the feed's own; no row is written.
    """
    source = "push"
    if isinstance(body, Delivery):
        source = body.source
        body = bytes(body.body)
    parse_options = feed.parse_options(lenient=source == "import")
    if options is not None:
        parse_options.update(options)
    if label_mapping is not None:
        parse_options["label_mapping"] = label_mapping
    try:
        parsed = parse_delivery(feed.format, body, parse_options)
    except ParseError as exc:
        return {"error": str(exc), "alerts": []}
    mapper = CustomerMapper.for_feed(feed)
    names = dict(Customer.objects.values_list("id", "slug"))
    rows = []
    for alert in parsed.alerts:
        mapper.orient(alert)
        customer_id, asset_id = mapper.map(alert)
        rows.append(
            {
                "title": alert.title,
                "fingerprint": alert.fingerprint,
                "resolved": alert.resolved,
                "target_ip": alert.target_ip,
                "target_port": alert.target_port,
                "target_host": alert.target_host,
                "source_ips": alert.source_ips[:20],
                "customer": names.get(customer_id, "") if customer_id else "",
                "asset_id": asset_id,
                "vector": alert.vector,
                "severity": alert.severity,
                "bps": alert.bps,
                "pps": alert.pps,
                "rps": alert.rps,
                "direction_rule": alert.direction_rule,
            }
        )
    return {"error": "", "alerts": rows}
