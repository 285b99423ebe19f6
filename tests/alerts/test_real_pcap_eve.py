"""Suricata 7 alerts built from the packets of real captures (../shared/data/pcap).

Suricata is not installed here, so tshark reads the packets a rule fires on and each
becomes the EVE ``alert`` event Suricata 7 writes for it (packet tuple, ``direction``,
and the flow's own ``src_ip``/``dest_ip``). The issue's two cases, on their real traffic:

* zeek's ``ftp/bruteforce.pcap``: 30 "530 Login incorrect" replies of the FTP server to
  30 ports of one client (ET's "FTP Brute-Force attempt response", a to_client rule);
* StopDDoS's DNS RRSIG reflection: hundreds of answers from reflectors' port 53 to two
  dozen ports of the victim 10.10.10.10.
"""

from __future__ import annotations

import shutil
import subprocess
from collections import Counter
from datetime import UTC, datetime

import pytest

from alerts.formats import examples as payloads
from alerts.models import Alert
from tests.shared import shared_file

pytestmark = [
    pytest.mark.peer,
    pytest.mark.skipif(shutil.which("tshark") is None, reason="tshark is not installed (apt-get install tshark)"),
]


TUPLE = ("frame.time_epoch", "ip.src", "{proto}.srcport", "ip.dst", "{proto}.dstport")


def _packets(path, display_filter: str, proto: str) -> list[list[str]]:
    fields = [f.format(proto=proto) for f in TUPLE]
    out = subprocess.run(
        [
            "tshark",
            "-n",
            "-r",
            str(path),
            "-Y",
            display_filter,
            "-T",
            "fields",
            *[f for x in fields for f in ("-e", x)],
        ],
        check=True,
        capture_output=True,
        text=True,
        timeout=120,
    ).stdout
    return [line.split("\t") for line in out.splitlines() if line.strip()]


def _eve(epoch: str, signature: str, sid: int, category: str, packet: tuple, flow: tuple, **extra) -> dict:
    src, sport, dst, dport, proto = packet
    at = datetime.fromtimestamp(float(epoch), tz=UTC)
    event = payloads.suricata_alert(
        signature=signature,
        signature_id=sid,
        category=category,
        severity=1,
        src_ip=src,
        src_port=int(sport),
        dest_ip=dst,
        dest_port=int(dport),
        proto=proto,
        at=at,
        app_proto=extra.pop("app_proto"),
    )
    event["direction"] = extra.pop("direction")
    client, client_port, server, server_port = flow
    event["flow"].update(src_ip=client, src_port=int(client_port), dest_ip=server, dest_port=int(server_port))
    return event


def test_real_ftp_brute_force_is_one_alert_whose_source_is_the_client(make_feed, post):
    path = shared_file("pcap/scan/zeek_ftp_bruteforce.pcap")
    replies = _packets(path, "ftp.response.code == 530", "tcp")
    assert len(replies) == 30 and len({r[4] for r in replies}) == 30, "30 replies to 30 client ports"
    events = [
        _eve(
            epoch,
            "ET SCAN Potential FTP Brute-Force attempt response",
            2002383,
            "Unsuccessful User Privilege Gain",
            (server, sport, client, cport, "TCP"),
            (client, cport, server, sport),
            app_proto="ftp",
            direction="to_client",
        )
        for epoch, server, sport, client, cport in replies
    ]
    feed, token = make_feed("suricata")
    assert post(feed, token, payloads.eve_lines(*events)).status_code == 202

    alert = Alert.objects.get(feed=feed)
    assert alert.count == 30
    assert (alert.target_ip, alert.target_port) == ("192.168.56.101", 21), "the FTP server is the victim"
    assert alert.source_ips == ["192.168.56.1"], "the brute-forcing client is the source"
    assert alert.vector == "bruteforce"


def test_real_dns_rrsig_reflection_is_one_alert_not_split_by_port(make_feed, post):
    path = shared_file("pcap/ddos/stopddos_amp.dns.RRSIG.fragmented.pcap")
    # IPv4 answers with their UDP header (the first fragment of each)
    answers = _packets(path, "ip and udp.srcport == 53", "udp")
    reflectors = Counter(a[1] for a in answers)
    victim_ports = {a[4] for a in answers}
    assert len(answers) > 300 and len(victim_ports) > 10 and len(reflectors) > 5
    events = [
        _eve(
            epoch,
            "ET DOS DNS Amplification Attack Inbound",
            2016016,
            "Attempted Denial of Service",
            (src, sport, dst, dport, "UDP"),
            (src, sport, dst, dport),  # the flow starts with the reflected answer
            app_proto="dns",
            direction="to_server",
        )
        for epoch, src, sport, dst, dport in answers
    ]
    feed, token = make_feed("suricata")
    assert post(feed, token, payloads.eve_lines(*events)).status_code == 202

    alert = Alert.objects.get(feed=feed)
    assert alert.count == len(answers)
    assert alert.target_ip == "10.10.10.10" and alert.vector == "dns_amplification"
    assert set(alert.source_ips) == set(reflectors), "every reflector is a source"
