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
    # lower-cased slug and name of every customer, for a label that names one
    names: dict[str, int] = field(default_factory=dict)
    asset_values: dict[int, str] = field(default_factory=dict)
    customer_slugs: dict[int, str] = field(default_factory=dict)
    # (kind, id) of account-like assets (Cloudflare account and zone ids)
    ids: dict[tuple[str, str], tuple[int, int]] = field(default_factory=dict)
    _prefix_cache: dict[str, tuple[int, int] | None] = field(default_factory=dict)

    @classmethod
    def for_feed(cls, feed) -> CustomerMapper:
        mapper = cls(feed_customer_id=feed.customer_id, customer_label=feed.customer_label or "")
        for customer_id, slug, name in Customer.objects.values_list("id", "slug", "name"):
            mapper.slugs[slug] = customer_id
            mapper.customer_slugs[customer_id] = slug
            mapper.names.setdefault(name.strip().lower(), customer_id)
            mapper.names[slug.lower()] = customer_id
        for asset_id, customer_id, kind, value in Asset.objects.values_list("id", "customer_id", "kind", "value"):
            mapper.asset_values[asset_id] = value
            if kind == Asset.Kind.ZONE:
                mapper.zones[value.lower()] = (customer_id, asset_id)
            elif kind == Asset.Kind.PREFIX:
                try:
                    mapper.prefixes.append((ipaddress.ip_network(value), customer_id, asset_id))
                except ValueError:
                    continue
            elif kind == Asset.Kind.SPECTRUM:
                mapper.spectrum[value.lower()] = (customer_id, asset_id)
            elif kind in (Asset.Kind.CLOUDFLARE_ACCOUNT, Asset.Kind.CLOUDFLARE_ZONE):
                mapper.ids[(kind, value.lower())] = (customer_id, asset_id)
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
        # Both sides of every alert are looked up (orient, then map): a delivery of a
        # thousand events from a few hosts scans the prefixes once per address.
        if ip in self._prefix_cache:
            return self._prefix_cache[ip]
        found = None
        try:
            address = ipaddress.ip_address(ip)
        except ValueError:
            address = None
        if address is not None:
            for network, customer_id, asset_id in self.prefixes:
                if address.version == network.version and address in network:
                    found = (customer_id, asset_id)
                    break
        if len(self._prefix_cache) < 100_000:
            self._prefix_cache[ip] = found
        return found

    def _owner(self, ip: str, host: str = "", port: int | None = None) -> tuple[int, int] | None:
        """The (customer, asset) a side of the traffic belongs to, by Spectrum app, zone or prefix."""
        if port is not None:
            for name in (host, ip):
                if name and (found := self.spectrum.get(f"{name.lower()}:{port}")):
                    return found
        return (self._zone_of(host) if host else None) or (self._prefix_of(ip) if ip else None)

    def _describe(self, side: str, owner: tuple[int, int]) -> str:
        customer_id, asset_id = owner
        owner_slug = self.customer_slugs.get(customer_id, "a customer")
        return f"{side} is {owner_slug}'s asset {self.asset_values.get(asset_id, '')}"

    def orient(self, alert: ParsedAlert) -> None:
        """Make the victim the side that belongs to a customer, and say which rule decided it.

        The parser has already oriented the alert from the sender's own fields (Suricata's
        flow and ``direction``...) and written that rule in ``direction_rule``. Only a
        customer's assets override it: when the parser's attacker is a customer's address
        and its victim is not, the two sides are swapped. When both or neither side is a
        customer's, the sender's fields stand.
        """
        if not alert.swappable or not alert.source_ips:
            return
        attacker = alert.source_ips[0]
        victim_owner = self._owner(alert.target_ip, alert.target_host, alert.target_port)
        attacker_owner = self._owner(attacker, port=alert.source_port)
        sender_rule = alert.direction_rule or "the sender's fields"
        if victim_owner and not attacker_owner:
            alert.direction_rule = (
                f"customer asset: {self._describe(alert.target_ip or alert.target_host, victim_owner)}"
            )
        elif attacker_owner and not victim_owner:
            victim, victim_port = alert.target_ip, alert.target_port
            alert.direction_rule = (
                f"customer asset: {self._describe(attacker, attacker_owner)}, so it is the victim "
                f"(the sender had it the other way round: {sender_rule})"
            )
            alert.target_ip, alert.target_port = attacker, alert.source_port
            alert.source_ips = [victim, *alert.source_ips[1:]] if victim else alert.source_ips[1:]
            alert.source_port = victim_port
            alert.target_host = ""  # a hostname the sender saw belongs to the other side
        elif victim_owner and attacker_owner:
            alert.direction_rule = f"both sides are customer assets; {sender_rule}"
        else:
            alert.direction_rule = f"neither side is a customer asset; {sender_rule}"

    def map(self, alert: ParsedAlert) -> tuple[int | None, int | None]:
        """(customer id, asset id); (None, None) puts the alert in the unassigned bucket.

        The feed's own customer first, then a label naming a customer, then the assets.
        """
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
        if found is None and alert.owner_ids:
            # The zone id is more specific than the account that holds it.
            for kind in (Asset.Kind.CLOUDFLARE_ZONE, Asset.Kind.CLOUDFLARE_ACCOUNT):
                value = alert.owner_ids.get(kind, "").lower()
                if value and (found := self.ids.get((kind, value))):
                    break
        if self.feed_customer_id is not None:
            asset_id = found[1] if found and found[0] == self.feed_customer_id else None
            return self.feed_customer_id, asset_id
        # A label that names a known customer decides (the sender's rule says whose alert it
        # is); the target address through the assets decides when no label names one.
        for named in (
            alert.customer_ref,
            (alert.labels or {}).get(self.customer_label, "") if self.customer_label else "",
        ):
            if named and (customer_id := self.slugs.get(named) or self.names.get(named.strip().lower())):
                return customer_id, (found[1] if found and found[0] == customer_id else None)
        return found if found else (None, None)
