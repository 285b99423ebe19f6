"""Crafted attack captures, one per vector, written with the suite's pcap writer (gen.py).

Every capture has a victim (``VICTIM`` in ``PREFIX``), a little normal traffic and the
victim's own answers where a real server would send them, so that direction matters.
"""

from __future__ import annotations

import random
from collections.abc import Iterator

from tests.traffic.gen import ACK, FIN, PSH, RST, SYN, T0, eth, icmp, ipv4, tcp, udp

Packet = tuple[float, bytes, int]
VICTIM = "203.0.113.10"
PREFIX = "203.0.113.0/24"


def _f(t: float, frame: bytes) -> Packet:
    return t, frame, len(frame)


def rand_ip(rng: random.Random) -> str:
    # Public-looking sources that never fall into the victim's prefix.
    return f"{rng.randint(11, 190)}.{rng.randint(0, 255)}.{rng.randint(0, 255)}.{rng.randint(1, 254)}"


def normal(rng: random.Random, seconds: float, *, t0: float = T0, rate: float = 40) -> Iterator[Packet]:
    """A few clients talking HTTPS with the victim, both directions."""
    clients = [f"192.0.2.{i}" for i in range(1, 11)]
    for i in range(int(seconds * rate)):
        t = t0 + i / rate
        c = clients[i % len(clients)]
        if i % 2:
            yield _f(t, eth(ipv4(c, VICTIM, 6, tcp(40000 + i % 10, 443, ACK | PSH, bytes(200)))))
        else:
            yield _f(t, eth(ipv4(VICTIM, c, 6, tcp(443, 40000 + i % 10, ACK, b""))))


def syn_flood_with_answers(
    rng: random.Random, n: int = 6000, pps: float = 4000, t0: float = T0 + 2, pool: int = 0
) -> list[Packet]:
    """SYNs to tcp/80 (spoofed, or from a botnet of ``pool`` addresses) and the server's
    SYN-ACK to ~90 % of them."""
    bots = [rand_ip(rng) for _ in range(pool)]
    out = []
    for i in range(n):
        t = t0 + i / pps
        src, sport = (bots[i % pool] if pool else rand_ip(rng)), rng.randint(1024, 65535)
        out.append(_f(t, eth(ipv4(src, VICTIM, 6, tcp(sport, 80, SYN)))))
        if i % 10:
            out.append(_f(t + 0.0001, eth(ipv4(VICTIM, src, 6, tcp(80, sport, SYN | ACK)))))
    return out


def peaky_udp_flood(rng: random.Random) -> list[Packet]:
    """A UDP flood peaking at 5,000 pps for 2 s in a 20 s capture otherwise at ≈ 60 pps:
    its peak is far above 5× its capture-wide average (≈ 560 pps)."""
    out = []
    for sec in range(20):
        rate = 5000 if sec in (9, 10) else 60
        for i in range(rate):
            t = T0 + sec + i / rate
            out.append(
                _f(
                    t,
                    eth(
                        ipv4(rand_ip(rng), VICTIM, 17, udp(rng.randint(1024, 65535), rng.randint(1, 65535), bytes(64)))
                    ),
                )
            )
            if rate > 60 and i % 50 == 0:  # the victim's port-unreachables
                out.append(_f(t, eth(ipv4(VICTIM, "198.18.0.1", 1, icmp(3, 3, bytes(28))))))
    return out


def reflection(
    rng: random.Random, sport: int, size: int, *, reflectors: int = 60, n: int = 3000, pps: float = 2000
) -> list[Packet]:
    pool = [rand_ip(rng) for _ in range(reflectors)]
    out = []
    for i in range(n):
        t = T0 + 1 + i / pps
        out.append(
            _f(t, eth(ipv4(pool[i % reflectors], VICTIM, 17, udp(sport, rng.randint(1024, 65535), bytes(size)))))
        )
        if i % 100 == 0:
            out.append(_f(t, eth(ipv4(VICTIM, pool[i % reflectors], 1, icmp(3, 3, bytes(28))))))
    return out


def flags_flood(rng: random.Random, flags: int, n: int = 5000, pps: float = 3000) -> list[Packet]:
    return [
        _f(T0 + 1 + i / pps, eth(ipv4(rand_ip(rng), VICTIM, 6, tcp(rng.randint(1024, 65535), 443, flags))))
        for i in range(n)
    ]


def udp_fixed(rng: random.Random, n: int = 5000, pps: float = 3000) -> list[Packet]:
    return [
        _f(T0 + 1 + i / pps, eth(ipv4(rand_ip(rng), VICTIM, 17, udp(rng.randint(1024, 65535), 27015, bytes(32)))))
        for i in range(n)
    ]


def icmp_flood(rng: random.Random, n: int = 5000, pps: float = 3000) -> list[Packet]:
    out = []
    for i in range(n):
        src = rand_ip(rng)
        t = T0 + 1 + i / pps
        out.append(_f(t, eth(ipv4(src, VICTIM, 1, icmp(8, 0, bytes(56))))))
        out.append(_f(t, eth(ipv4(VICTIM, src, 1, icmp(0, 0, bytes(56))))))
    return out


def fragment_flood(rng: random.Random, n: int = 3000, pps: float = 2000) -> list[Packet]:
    return [
        _f(T0 + 1 + i / pps, eth(ipv4(rand_ip(rng), VICTIM, 17, bytes(400), ident=i & 0xFFFF, frag=100)))
        for i in range(n)
    ]


def gre_flood(rng: random.Random, n: int = 3000, pps: float = 2000) -> list[Packet]:
    inner = ipv4("10.0.0.1", "10.0.0.2", 17, udp(1234, 5678, bytes(100)))
    gre = b"\x00\x00\x08\x00" + inner
    return [_f(T0 + 1 + i / pps, eth(ipv4(rand_ip(rng), VICTIM, 47, gre))) for i in range(n)]


def dns_query_flood(rng: random.Random, n: int = 4000, pps: float = 2000) -> list[Packet]:
    out = []
    for i in range(n):
        src, sport = rand_ip(rng), rng.randint(1024, 65535)
        t = T0 + 1 + i / pps
        q = (
            bytes([i >> 8 & 255, i & 255, 1, 0, 0, 1, 0, 0, 0, 0, 0, 0])
            + b"\x03www\x07example\x03com\x00\x00\x01\x00\x01"
        )
        out.append(_f(t, eth(ipv4(src, VICTIM, 17, udp(sport, 53, q)))))
        if i % 3 == 0:
            out.append(_f(t, eth(ipv4(VICTIM, src, 17, udp(53, sport, q + bytes(16))))))
    return out


def http_flood(rng: random.Random, conns: int = 1500, rate: float = 500) -> list[Packet]:
    """Full connections, each one GET: SYN, SYN-ACK, ACK, GET, response, FIN."""
    out = []
    bots = [f"100.{64 + i // 250}.{i % 250}.7" for i in range(40)]
    get = b"GET / HTTP/1.1\r\nHost: www.example.com\r\nUser-Agent: curl/8.5.0\r\nAccept: */*\r\n\r\n"
    for i in range(conns):
        t = T0 + 1 + i / rate
        c, port = bots[i % len(bots)], 20000 + i
        out += [
            _f(t, eth(ipv4(c, VICTIM, 6, tcp(port, 80, SYN)))),
            _f(t + 0.0001, eth(ipv4(VICTIM, c, 6, tcp(80, port, SYN | ACK)))),
            _f(t + 0.0002, eth(ipv4(c, VICTIM, 6, tcp(port, 80, ACK)))),
            _f(t + 0.0003, eth(ipv4(c, VICTIM, 6, tcp(port, 80, ACK | PSH, get)))),
            _f(t + 0.0004, eth(ipv4(VICTIM, c, 6, tcp(80, port, ACK | PSH, bytes(300))))),
            _f(t + 0.0005, eth(ipv4(c, VICTIM, 6, tcp(port, 80, ACK | FIN)))),
        ]
    return out


def vertical_scan(rng: random.Random) -> list[Packet]:
    out = []
    for i, port in enumerate(range(1, 1001)):
        t = T0 + 1 + i / 500
        out.append(_f(t, eth(ipv4("198.51.100.66", VICTIM, 6, tcp(55555, port, SYN)))))
        out.append(_f(t, eth(ipv4(VICTIM, "198.51.100.66", 6, tcp(port, 55555, RST | ACK)))))
    return out


def horizontal_scan(rng: random.Random) -> list[Packet]:
    return [
        _f(T0 + 1 + i / 500, eth(ipv4("198.51.100.77", f"203.0.113.{i}", 6, tcp(55555, 22, SYN))))
        for i in range(1, 255)
    ]


def carpet_syn(rng: random.Random, n: int = 6000, pps: float = 4000) -> list[Packet]:
    return [
        _f(
            T0 + 1 + i / pps,
            eth(ipv4(rand_ip(rng), f"203.0.113.{1 + i % 200}", 6, tcp(rng.randint(1024, 65535), 80, SYN))),
        )
        for i in range(n)
    ]


def merge(*streams) -> list[Packet]:
    return sorted((p for s in streams for p in s), key=lambda p: p[0])


__all__ = ["VICTIM", "PREFIX", "RST", "ACK", "SYN"]
