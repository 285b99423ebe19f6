"""Real enforcement: mitigations applied with nft inside network namespaces, checked with real packets.

Two namespaces joined by a veth pair: a "client" with two addresses (10.231.0.10 is
blocked, 10.231.0.11 is not) and a "server" where the nftables backend installs the
mitigation and a listener records who got through. Packets are sent from Python sockets
bound to each source address inside the client namespace. nft's own counters prove the
drops; the listener proves what arrived.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import threading
import time
import uuid
from datetime import timedelta

import pytest
from django.utils import timezone

from mitigations import services, tasks
from mitigations.backends.nftables import NftablesBackend
from mitigations.models import Mitigation

pytestmark = [pytest.mark.root, pytest.mark.peer, pytest.mark.django_db]

BLOCKED, ALLOWED, SERVER = "10.231.0.10", "10.231.0.11", "10.231.0.1"
# The server namespace is a scrubbing host in front of two customers: SERVER is the lab
# customer's (prefix LAB_PREFIX), OTHER belongs to another customer (OTHER_PREFIX).
OTHER = "10.231.0.200"
LAB_PREFIX, OTHER_PREFIX = "10.231.0.0/29", "10.231.0.192/26"
SCOPE = f"ip.dst in {{{LAB_PREFIX}}} and "
UDP_PORT, TCP_PORT = 9999, 9998

LISTENER = f"""
import select, socket
udp = []
for address in ("{SERVER}", "{OTHER}"):
    u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); u.bind((address, {UDP_PORT})); udp.append(u)
t = socket.socket(); t.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
t.bind(("0.0.0.0", {TCP_PORT})); t.listen(64)
print("ready", flush=True)
while True:
    ready, _, _ = select.select([*udp, t], [], [], 0.2)
    for s in ready:
        if s is t:
            c, addr = t.accept(); print("tcp", addr[0], c.getsockname()[0], flush=True); c.close()
        else:
            data, addr = s.recvfrom(2048); print("udp", addr[0], s.getsockname()[0], flush=True)
"""

SENDER = f"""
import socket, sys
src, proto, n, dst = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4]
if proto == "udp":
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.bind((src, 0))
    for _ in range(n):
        s.sendto(b"x", (dst, {UDP_PORT}))
else:
    for _ in range(n):
        try:
            socket.create_connection((dst, {TCP_PORT}), timeout=1, source_address=(src, 0)).close()
            print("connected")
        except OSError:
            print("timeout")
"""


def _requirements() -> str | None:
    if os.geteuid() != 0:
        return "needs root for network namespaces"
    for binary in ("nft", "ip"):
        if shutil.which(binary) is None:
            return f"{binary} is not installed (Debian packages nftables, iproute2)"
    return None


def sh(*argv: str) -> None:
    done = subprocess.run(argv, capture_output=True, text=True, timeout=30)
    assert done.returncode == 0, f"{' '.join(argv)}: {done.stderr}"


class Lab:
    """The two namespaces, the listener's output and a sender."""

    def __init__(self) -> None:
        tag = uuid.uuid4().hex[:6]
        self.client, self.server = f"h15a-c-{tag}", f"h15a-s-{tag}"
        self.veth_client, self.veth_server = f"vc{tag}", f"vs{tag}"
        self.received: list[tuple[str, str, str]] = []
        self.listener: subprocess.Popen | None = None

    def up(self) -> None:
        sh("ip", "netns", "add", self.client)
        sh("ip", "netns", "add", self.server)
        sh("ip", "link", "add", self.veth_client, "type", "veth", "peer", "name", self.veth_server)
        sh("ip", "link", "set", self.veth_client, "netns", self.client)
        sh("ip", "link", "set", self.veth_server, "netns", self.server)
        for ns, dev, addresses in (
            (self.client, self.veth_client, (BLOCKED, ALLOWED)),
            (self.server, self.veth_server, (SERVER, OTHER)),
        ):
            for address in addresses:
                sh("ip", "-n", ns, "addr", "add", f"{address}/24", "dev", dev)
            sh("ip", "-n", ns, "link", "set", dev, "up")
            sh("ip", "-n", ns, "link", "set", "lo", "up")
        self.listener = subprocess.Popen(
            ["ip", "netns", "exec", self.server, sys.executable, "-u", "-c", LISTENER],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        assert self.listener.stdout.readline().strip() == "ready"
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        for line in self.listener.stdout:
            proto, source, destination = line.split()
            self.received.append((proto, source, destination))

    def down(self) -> None:
        if self.listener is not None:
            self.listener.kill()
            self.listener.wait(timeout=10)
        for ns in (self.client, self.server):
            subprocess.run(["ip", "netns", "del", ns], capture_output=True)

    def send(self, source: str, proto: str, count: int, dst: str = SERVER) -> list[str]:
        done = subprocess.run(
            ["ip", "netns", "exec", self.client, sys.executable, "-c", SENDER, source, proto, str(count), dst],
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert done.returncode == 0, done.stderr
        return done.stdout.split()

    def arrivals(self, source: str, proto: str, count: int, dst: str = SERVER) -> int:
        """Send ``count`` packets (UDP) or connections (TCP) from ``source`` to ``dst``; how many reached it."""
        mark = len(self.received)
        self.send(source, proto, count, dst)
        time.sleep(0.5)
        return sum(1 for p, s, d in self.received[mark:] if p == proto and s == source and d == dst)


@pytest.fixture
def lab():
    reason = _requirements()
    if reason:
        pytest.skip(reason)
    lab = Lab()
    try:
        lab.up()
        yield lab
    finally:
        lab.down()


def counters(lab: Lab, mitigation: Mitigation) -> dict | None:
    return NftablesBackend().counters(lab.server).get(mitigation.name)


def assert_blocked(lab: Lab, mitigation: Mitigation) -> None:
    assert lab.arrivals(BLOCKED, "udp", 5) == 0
    assert lab.arrivals(BLOCKED, "tcp", 1) == 0
    assert lab.arrivals(ALLOWED, "udp", 5) == 5
    assert lab.arrivals(ALLOWED, "tcp", 1) == 1
    dropped = counters(lab, mitigation)
    assert dropped is not None and dropped["packets"] >= 6, dropped  # 5 datagrams + at least one SYN


def assert_open(lab: Lab, mitigation: Mitigation) -> None:
    assert counters(lab, mitigation) is None, "the mitigation's rules are still installed"
    assert lab.arrivals(BLOCKED, "udp", 5) == 5
    assert lab.arrivals(BLOCKED, "tcp", 1) == 1


def test_traffic_passes_before_any_mitigation(lab):
    assert lab.arrivals(BLOCKED, "udp", 3) == 3
    assert lab.arrivals(ALLOWED, "tcp", 1) == 1


def test_block_drops_only_the_blocked_source_until_the_beat_expires_it(lab, enforce):
    mitigation = enforce()
    assert mitigation.backend_answers["nftables"]["installed"]["rules"] == 1
    assert_blocked(lab, mitigation)

    Mitigation.objects.filter(pk=mitigation.pk).update(expires_at=timezone.now() - timedelta(seconds=1))
    assert tasks.expire_mitigations() == 1  # the beat task's body
    mitigation.refresh_from_db()
    assert mitigation.state == Mitigation.State.EXPIRED
    assert mitigation.backend_answers["nftables"]["removal"]["removed"]["rules"] == 1
    assert_open(lab, mitigation)


def test_block_is_lifted_by_a_rollback(lab, enforce, engineer):
    mitigation = enforce()
    assert_blocked(lab, mitigation)
    services.mitigation_rollback(mitigation=mitigation, user=engineer, reason="customer's partner")
    assert mitigation.state == Mitigation.State.ROLLED_BACK
    assert_open(lab, mitigation)


def test_a_second_mitigation_survives_the_removal_of_the_first(lab, enforce, engineer):
    first = enforce()
    second = enforce(expression=SCOPE + f"ip.src eq {BLOCKED} and udp.dstport eq {UDP_PORT}")
    services.mitigation_rollback(mitigation=first, user=engineer)
    assert counters(lab, second)["rules"] == 1
    assert lab.arrivals(BLOCKED, "udp", 3) == 0
    assert lab.arrivals(BLOCKED, "tcp", 1) == 1  # only the first blocked TCP


def test_rate_limit_lets_the_rate_through_and_drops_the_rest(lab, enforce, engineer):
    mitigation = enforce(
        kind="rate_limit",
        expression=SCOPE + f"ip.src eq {BLOCKED} and udp.dstport eq {UDP_PORT}",
        rate={"requests": 10, "period": 1, "burst": 5},
    )
    sent = 300
    arrived = lab.arrivals(BLOCKED, "udp", sent)
    assert 0 < arrived < sent / 2, arrived
    assert lab.arrivals(ALLOWED, "udp", 100) == 100  # other sources are not limited
    dropped = counters(lab, mitigation)
    assert dropped["packets"] == sent - arrived, (dropped, arrived)

    Mitigation.objects.filter(pk=mitigation.pk).update(expires_at=timezone.now() - timedelta(seconds=1))
    tasks.expire_mitigations()
    assert lab.arrivals(BLOCKED, "udp", 100) == 100

    again = enforce(
        kind="rate_limit",
        expression=SCOPE + f"ip.src eq {BLOCKED} and udp.dstport eq {UDP_PORT}",
        rate={"requests": 10, "period": 1, "burst": 5},
    )
    assert lab.arrivals(BLOCKED, "udp", 100) < 50
    services.mitigation_rollback(mitigation=again, user=engineer)
    assert lab.arrivals(BLOCKED, "udp", 100) == 100


def test_drift_check_flags_a_rule_removed_behind_our_back_and_a_stray(lab, enforce):
    mitigation = enforce()
    assert tasks.check_drift() == 0
    mitigation.refresh_from_db()
    assert mitigation.hits["nftables"]["rules"] == 1 and not mitigation.drift

    sh("ip", "netns", "exec", lab.server, "nft", "flush", "chain", "inet", "shieldwall", "input")
    sh(
        "ip",
        "netns",
        "exec",
        lab.server,
        "nft",
        "add",
        "rule",
        "inet",
        "shieldwall",
        "input",
        "ip",
        "saddr",
        "10.9.9.9",
        "drop",
        "comment",
        '"sw-999999"',
    )
    assert tasks.check_drift() == 1
    mitigation.refresh_from_db()
    assert "not installed" in mitigation.drift["nftables"]
    from mitigations.models import BackendState

    assert BackendState.objects.get(key=f"nftables:{lab.server}").unexpected == ["sw-999999"]


def test_applying_twice_replaces_rather_than_duplicates(lab, enforce):
    mitigation = enforce()
    from mitigations.backends import Spec

    backend = NftablesBackend()
    spec = Spec(name=mitigation.name, compiled=mitigation.compiled["nftables"], options={"namespace": lab.server})
    answer = backend.apply(spec)
    assert answer["replaced"]["rules"] == 1
    assert counters(lab, mitigation)["rules"] == 1


def test_iptables_backend_blocks_through_the_shieldwall_chain_and_removes_only_its_rules(lab, enforce, engineer):
    if shutil.which("iptables-restore") is None or shutil.which("ipset") is None:
        pytest.skip("iptables-restore and ipset are not installed")
    from mitigations.backends.iptables import IptablesBackend

    backend = IptablesBackend()
    listed = enforce("iptables", expression=SCOPE + f"ip.src in {{{BLOCKED} 10.231.0.99}}")
    other = enforce("iptables", expression=SCOPE + f"ip.src eq 10.231.0.77 and udp.dstport eq {UDP_PORT}")
    assert lab.arrivals(BLOCKED, "udp", 5) == 0
    assert lab.arrivals(ALLOWED, "udp", 5) == 5
    assert backend.counters(lab.server)[listed.name]["packets"] >= 5

    services.mitigation_rollback(mitigation=listed, user=engineer)
    assert lab.arrivals(BLOCKED, "udp", 5) == 5
    installed = backend.counters(lab.server)
    assert listed.name not in installed and installed[other.name]["rules"] == 1
    hooks = subprocess.run(
        ["ip", "netns", "exec", lab.server, "iptables", "-S", "INPUT"], capture_output=True, text=True
    ).stdout
    assert hooks.count("-j SHIELDWALL") == 1


# --------------------------------------------------------------------------- scope and allow-before-drop


def test_a_scoped_udp_rule_drops_the_attack_on_the_victim_and_passes_udp_to_another_customer(
    lab, enforce, lab_customer
):
    # The comparison's broad suggestion for a UDP reflection, as the propose form prefills it.
    expression = services.scoped_expression(lab_customer, 'ip.proto eq "udp"')
    assert expression.startswith(SCOPE)
    mitigation = enforce(expression=expression)
    assert lab.arrivals(BLOCKED, "udp", 10) == 0  # toward the victim: dropped
    assert lab.arrivals(ALLOWED, "udp", 10) == 0
    assert lab.arrivals(BLOCKED, "udp", 10, dst=OTHER) == 10  # another customer's address: untouched
    assert lab.arrivals(BLOCKED, "tcp", 1) == 1  # not UDP
    assert counters(lab, mitigation)["packets"] == 20


def test_an_unscoped_rule_never_reaches_the_scrubbing_host(lab, draft, lab_customer, make_target):
    target = make_target("nftables", name="nftables-lab", namespace=lab.server)
    with pytest.raises(services.MitigationError, match=r"10\.231\.0\.192.*Lab Neighbour"):
        draft(customer=lab_customer, target=target, expression='ip.proto eq "udp"')
    assert counters(lab, Mitigation(pk=1)) is None and not Mitigation.objects.exists()


@pytest.mark.parametrize("kind_of_target", ["nftables", "iptables"])
def test_allow_goes_before_every_drop_and_lets_the_allowed_source_through(lab, enforce, lab_customer, kind_of_target):
    if kind_of_target == "iptables" and (shutil.which("iptables-restore") is None or shutil.which("ipset") is None):
        pytest.skip("iptables-restore and ipset are not installed")
    drop = enforce(kind_of_target, expression=services.scoped_expression(lab_customer, f"udp.dstport eq {UDP_PORT}"))
    assert lab.arrivals(ALLOWED, "udp", 5) == 0 and lab.arrivals(BLOCKED, "udp", 5) == 0
    # Applied after the drop, and still ahead of it.
    allow = enforce(kind_of_target, expression=SCOPE + f"ip.src eq {ALLOWED}", action="allow")
    assert lab.arrivals(ALLOWED, "udp", 20) == 20
    assert lab.arrivals(BLOCKED, "udp", 5) == 0
    if kind_of_target == "nftables":
        listing = subprocess.run(
            ["ip", "netns", "exec", lab.server, "nft", "list", "chain", "inet", "shieldwall", "input"],
            capture_output=True,
            text=True,
        ).stdout
        assert listing.index(f'comment "{allow.name}"') < listing.index(f'comment "{drop.name}"'), listing
    else:
        from mitigations.backends.iptables import IptablesBackend

        assert IptablesBackend().counters(lab.server)[allow.name]["packets"] >= 20
        rules = subprocess.run(
            ["ip", "netns", "exec", lab.server, "iptables", "-S", "SHIELDWALL"], capture_output=True, text=True
        ).stdout
        assert rules.index(allow.name) < rules.index(drop.name), rules
    # A later drop is appended after the allow: the allowed source still gets through.
    enforce(kind_of_target, expression=SCOPE + f"ip.src eq {ALLOWED}")
    assert lab.arrivals(ALLOWED, "udp", 5) == 5
