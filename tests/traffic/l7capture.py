"""A TLS + HTTP capture made by real clients and servers, in a network namespace of its own.

Inside ``h14p-l7-<random>``: Python's ``http.server`` on 8080 and ``openssl s_server`` on
8443 (and 4433, a non-standard port), dumpcap on the namespace's loopback, and as clients
curl (several user agents, a cookie, a POST, HTTP/1.0), Python's urllib, ``openssl
s_client`` with different cipher and group offers, and curl over HTTPS. Nothing of the
host's traffic can be in it.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import time
import uuid
from pathlib import Path

import pytest

USER_AGENTS = ["curl-bot/1.0", "Mozilla/5.0 (X11; Linux x86_64) Firefox/128.0", 'python-requests/2.31 "quoted"']


def need_tools() -> None:
    for binary in ("ip", "dumpcap", "curl", "openssl", "tshark"):
        if shutil.which(binary) is None:
            pytest.skip(f"{binary} is not installed")
    if os.geteuid() != 0:
        pytest.skip("needs root for a network namespace")


def _run(ns: str, argv: list[str], **kw) -> subprocess.CompletedProcess:
    return subprocess.run(["ip", "netns", "exec", ns, *argv], capture_output=True, timeout=30, **kw)


def _popen(ns: str, argv: list[str], cwd: Path) -> subprocess.Popen:
    return subprocess.Popen(
        ["ip", "netns", "exec", ns, *argv],
        cwd=cwd,
        stdin=subprocess.PIPE,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


def _wait_port(ns: str, port: int) -> None:
    for _ in range(100):
        if f":{port} " in _run(ns, ["ss", "-ltn"], text=True).stdout:
            return
        time.sleep(0.05)
    raise RuntimeError(f"nothing listens on {port}")


def make_capture(out: Path) -> Path:
    """Write ``out`` (pcapng) and return it."""
    need_tools()
    work = out.parent
    ns = f"h14p-l7-{uuid.uuid4().hex[:6]}"
    if subprocess.run(["ip", "netns", "add", ns], capture_output=True).returncode != 0:
        pytest.skip("cannot create a network namespace")
    procs: list[subprocess.Popen] = []
    try:
        _run(ns, ["ip", "link", "set", "lo", "up"], check=True)
        subprocess.run(
            ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-subj", "/CN=victim.example"]
            + ["-keyout", str(work / "key.pem"), "-out", str(work / "cert.pem"), "-days", "2"],
            capture_output=True,
            check=True,
        )
        (work / "index.html").write_text("hello\n")
        procs.append(_popen(ns, ["python3", "-m", "http.server", "8080", "--bind", "127.0.0.1"], work))
        for port in (8443, 4433):
            procs.append(
                _popen(
                    ns,
                    ["openssl", "s_server", "-accept", str(port), "-cert", "cert.pem", "-key", "key.pem", "-www"],
                    work,
                )
            )
        for port in (8080, 8443, 4433):
            _wait_port(ns, port)
        dump = subprocess.Popen(
            ["ip", "netns", "exec", ns, "dumpcap", "-q", "-i", "lo", "-w", str(out)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        for _ in range(100):
            if out.exists() and out.stat().st_size > 0:
                break
            time.sleep(0.05)
        time.sleep(0.5)
        base = "http://127.0.0.1:8080"
        for ua in USER_AGENTS:
            _run(ns, ["curl", "-s", "-o", "/dev/null", "-A", ua, f"{base}/index.html?x=1"])
        _run(ns, ["curl", "-s", "-o", "/dev/null", "-A", USER_AGENTS[0], "-b", "sid=abc; theme=dark", f"{base}/a/b"])
        _run(ns, ["curl", "-s", "-o", "/dev/null", "-0", "-A", "old-client", "-d", "k=v", f"{base}/login"])
        _run(ns, ["python3", "-c", f"import urllib.request; urllib.request.urlopen('{base}/index.html').read()"])
        for port, extra in (
            (8443, []),
            (8443, ["-tls1_2", "-cipher", "ECDHE-RSA-AES128-GCM-SHA256:AES256-SHA"]),
            (4433, ["-groups", "P-256:X25519", "-alpn", "h2,http/1.1", "-servername", "victim.example"]),
        ):
            _run(ns, ["openssl", "s_client", "-connect", f"127.0.0.1:{port}", *extra], input=b"Q\n")
        _run(ns, ["curl", "-sk", "-o", "/dev/null", "-A", "tls-curl", "https://127.0.0.1:8443/"])
        time.sleep(0.5)
        dump.terminate()
        dump.wait(timeout=10)
    finally:
        for p in procs:
            p.terminate()
        for p in procs:
            try:
                p.wait(timeout=5)
            except subprocess.TimeoutExpired:
                p.kill()
        subprocess.run(["ip", "netns", "del", ns], capture_output=True)
    return out
