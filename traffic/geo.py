"""Country and ASN of an address, offline.

The default is geoip2fast's own data files (shipped in its wheel: country and AS name for
IPv4 and IPv6, no AS number). When the operator points ``TRAFFIC_GEOIP_MMDB`` (setting or
environment variable, comma-separated paths) at MaxMind GeoLite2
or DB-IP ``.mmdb`` files (a country or city database and/or an ASN database), those are
read instead, and give the AS number too. Nothing is looked up over the network.

A private, reserved or unlisted address has ``country`` and ``asn`` None: unknown, never
guessed.
"""

from __future__ import annotations

import functools
import ipaddress
import threading
from collections.abc import Iterable
from typing import Any

from django.conf import settings

__all__ = ["lookup", "annotate", "reset", "warm"]

_lock = threading.Lock()


def _mmdb_paths() -> list[str]:
    value = settings.TRAFFIC_GEOIP_MMDB
    if isinstance(value, str):
        value = [p.strip() for p in value.split(",")]
    return [p for p in value if p]


@functools.lru_cache(maxsize=1)
def _readers(paths: tuple[str, ...]) -> list:
    import maxminddb

    return [maxminddb.open_database(p) for p in paths]


@functools.lru_cache(maxsize=1)
def _fast():
    from geoip2fast import GeoIP2Fast

    # The ASN + IPv6 file is a superset of the country-only ones; loading takes ≈ 2 s once per process.
    return GeoIP2Fast(geoip2fast_data_file="geoip2fast-asn-ipv6.dat.gz", verbose=False)


def warm() -> None:
    """Load the configured database now (a worker calls this at start)."""
    paths = tuple(_mmdb_paths())
    if paths:
        _readers(paths)
    else:
        with _lock:
            _fast()


def reset() -> None:
    """Forget the loaded databases (after the setting changed)."""
    _readers.cache_clear()
    _fast.cache_clear()
    _cached.cache_clear()


def _from_mmdb(ip: str, readers: list) -> dict[str, Any]:
    out: dict[str, Any] = {"country": None, "asn": None, "as_name": None, "source": "mmdb"}
    for reader in readers:
        record = reader.get(ip)
        if not isinstance(record, dict):
            continue
        country = record.get("country") or record.get("registered_country") or {}
        if isinstance(country, dict) and country.get("iso_code") and out["country"] is None:
            out["country"] = str(country["iso_code"])
        if record.get("autonomous_system_number") and out["asn"] is None:
            out["asn"] = int(record["autonomous_system_number"])
            out["as_name"] = record.get("autonomous_system_organization") or None
    return out


def _from_fast(ip: str) -> dict[str, Any]:
    with _lock:  # geoip2fast keeps per-lookup state on the instance
        r = _fast().lookup(ip)
    country = r.country_code if r.country_code and r.country_code != "--" and not r.is_private else None
    name = r.asn_name if r.asn_name and not r.is_private else None
    return {"country": country, "asn": None, "as_name": name, "source": "geoip2fast"}


@functools.lru_cache(maxsize=100_000)
def _cached(ip: str, paths: tuple[str, ...]) -> dict[str, Any]:
    try:
        addr = ipaddress.ip_address(ip)
    except ValueError:
        return {"country": None, "asn": None, "as_name": None, "source": None}
    if not addr.is_global:
        return {"country": None, "asn": None, "as_name": None, "source": None}
    if paths:
        return _from_mmdb(str(addr), _readers(paths))
    return _from_fast(str(addr))


def lookup(ip: str) -> dict[str, Any]:
    """``{"country": "US", "asn": 15169 | None, "as_name": "GOOGLE", "source": ...}`` for one address."""
    return dict(_cached(str(ip), tuple(_mmdb_paths())))


def annotate(rows: Iterable[dict], key: str = "ip") -> list[dict]:
    """Adds ``country``, ``asn`` and ``as_name`` to each row (in place) and returns them."""
    rows = list(rows)
    for row in rows:
        if row.get(key):
            geo = lookup(row[key])
            row.update(country=geo["country"], asn=geo["asn"], as_name=geo["as_name"])
    return rows


def country_counts(rows: Iterable[dict], weight: str) -> list[dict]:
    """Top countries of annotated rows, weighted by ``weight`` (unknown kept apart)."""
    totals: dict[str, int] = {}
    for row in rows:
        key = row.get("country") or "unknown"
        totals[key] = totals.get(key, 0) + int(row.get(weight) or 0)
    return [{"value": k, "count": v} for k, v in sorted(totals.items(), key=lambda kv: -kv[1])]
