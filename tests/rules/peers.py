"""Run compiled output through the real tools, inside a throwaway network namespace.

``nft -c`` only checks; ipset and iptables-restore --test still talk to the kernel, so
they run in a namespace created for the check and deleted after it: the host's
firewall is never touched.
"""

import os
import shutil
import subprocess
import tempfile
import uuid
from contextlib import contextmanager

import pytest


def need(*binaries: str) -> None:
    for binary in binaries:
        if shutil.which(binary) is None:
            pytest.skip(f"{binary} is not installed (Debian packages nftables, iptables, ipset)")
    if os.geteuid() != 0:
        pytest.skip("needs root for a network namespace")


@contextmanager
def netns():
    name = f"swtest-{uuid.uuid4().hex[:8]}"
    created = subprocess.run(["ip", "netns", "add", name], capture_output=True, text=True)
    if created.returncode != 0:
        pytest.skip(f"cannot create a network namespace: {created.stderr.strip()}")
    try:
        yield name
    finally:
        subprocess.run(["ip", "netns", "del", name], capture_output=True)


def run_in(ns: str, argv: list[str], stdin: str) -> subprocess.CompletedProcess:
    return subprocess.run(["ip", "netns", "exec", ns, *argv], input=stdin, capture_output=True, text=True, timeout=30)


def nft_check(text: str) -> subprocess.CompletedProcess:
    need("nft", "ip")
    with netns() as ns, tempfile.NamedTemporaryFile("w", suffix=".nft") as f:
        f.write(text)
        f.flush()
        return run_in(ns, ["nft", "-c", "-f", f.name], "")


def iptables_check(script) -> list[tuple[str, subprocess.CompletedProcess]]:
    need("iptables-restore", "ip6tables-restore", "ipset", "ip")
    with netns() as ns:
        results = [("ipset", run_in(ns, ["ipset", "restore"], script.ipset))]
        results.append(("iptables", run_in(ns, ["iptables-restore", "--test"], script.rules)))
        results.append(("ip6tables", run_in(ns, ["ip6tables-restore", "--test"], script.rules6)))
        return results
