"""Which customer and asset an alert belongs to: by feed, label, zone, hostname or target IP."""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field

from alerts.formats import ParsedAlert
from console.models import Asset, Customer


@dataclass
class CustomerMapper:
    """Loaded once per delivery; maps every alert of it without further queries."""

    feed_customer_id: int | None = None
    customer_label: str = "customer"
    slugs: dict[str, int] = field(default_factory=dict)
    zones: dict[str, tuple[int, int]] = field(default_factory=dict)
    prefixes: list[tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, int, int]] = field(default_factory=list)
    spectrum: dict[str, tuple[int, int]] = field(default_factory=dict)

    @classmethod
    def for_feed(cls, feed) -> CustomerMapper:  # noqa: ANN001
        mapper = cls(feed_customer_id=feed.customer_id, customer_label=feed.customer_label or "")
        mapper.slugs = dict(Customer.objects.values_list("slug", "id"))
        for asset_id, customer_id, kind, value in Asset.objects.values_list("id", "customer_id", "kind", "value"):
            if kind == Asset.Kind.ZONE:
                mapper.zones[value.lower()] = (customer_id, asset_id)
            elif kind == Asset.Kind.PREFIX:
                try:
                    mapper.prefixes.append((ipaddress.ip_network(value), customer_id, asset_id))
                except ValueError:
                    continue
            elif kind == Asset.Kind.SPECTRUM:
                mapper.spectrum[value.lower()] = (customer_id, asset_id)
        # Most specific prefix first.
        mapper.prefixes.sort(key=lambda item: item[0].prefixlen, reverse=True)
        return mapper

    def _zone_of(self, host: str) -> tuple[int, int] | None:
        host = host.lower().rstrip(".")
        while host:
            if host in self.zones:
                return self.zones[host]
            _, _, host = host.partition(".")
        return None

    def _prefix_of(self, ip: str) -> tuple[int, int] | None:
        try:
            address = ipaddress.ip_address(ip)
        except ValueError:
            return None
        for network, customer_id, asset_id in self.prefixes:
            if address.version == network.version and address in network:
                return customer_id, asset_id
        return None

    def map(self, alert: ParsedAlert) -> tuple[int | None, int | None]:
        """(customer id, asset id); (None, None) puts the alert in the unassigned bucket."""
        found: tuple[int, int] | None = None
        if alert.target_port is not None:
            for host in (alert.target_host, alert.target_ip):
                if host and f"{host.lower()}:{alert.target_port}" in self.spectrum:
                    found = self.spectrum[f"{host.lower()}:{alert.target_port}"]
                    break
        if found is None:
            for host in (alert.target_host, alert.zone):
                if host and (found := self._zone_of(host)):
                    break
        if found is None and alert.target_ip:
            found = self._prefix_of(alert.target_ip)
        if self.feed_customer_id is not None:
            asset_id = found[1] if found and found[0] == self.feed_customer_id else None
            return self.feed_customer_id, asset_id
        if found is None and self.customer_label:
            slug = (alert.labels or {}).get(self.customer_label)
            if slug and slug in self.slugs:
                return self.slugs[slug], None
        return found if found else (None, None)
