"""Apply mitigations with iptables-restore (IPv4 and IPv6) and ipset.

Rules go into the ``SHIELDWALL`` chain, hooked once from INPUT (``-C`` before ``-I``, so
never twice). The chain is created by the backend and the compiled script's own
``:SHIELDWALL - [0:0]`` line is dropped before ``iptables-restore --noflush``: declaring
an existing chain in a restore file flushes it, which would wipe every other mitigation.

Removal reads ``iptables-save`` and deletes the rules whose comment is the mitigation's
name, then its sub-chain and its ipsets. Reading back uses ``iptables-save -c`` counters.
"""

from __future__ import annotations

import ipaddress
import json
import re
import shlex
import subprocess
from typing import Any

from mitigations.backends import Backend, BackendError, Spec, Verification

CHAIN = "SHIELDWALL"
COMMENT = re.compile(r'--comment "?(sw-[0-9]+(?:-[0-9a-z]+)?)"?')
COUNTERS = re.compile(r"^\[([0-9]+):([0-9]+)\] ")
TOOLS = (
    ("iptables", "iptables-restore", "iptables-save", "rules"),
    ("ip6tables", "ip6tables-restore", "ip6tables-save", "rules6"),
)


class IptablesBackend(Backend):
    name = "iptables"

    def __init__(
        self, *, namespace: str = "", command: str = "", hook: str = "INPUT", timeout: float = 30.0, **_: Any
    ) -> None:
        self.namespace = namespace
        self.command = command
        self.hook = hook
        self.timeout = timeout

    def location(self, options: dict) -> str:
        where = options.get("namespace", self.namespace) or options.get("command", self.command)
        return f"iptables:{where or 'unconfigured'}"

    def _run(self, namespace: str, argv: list[str], stdin: str | None = None, check: bool = True):
        # Never the console's own host by default: a namespace, or the operator's command.
        if namespace:
            prefix = ["ip", "netns", "exec", namespace]
        elif self.command:
            prefix = shlex.split(self.command)
        else:
            raise BackendError("no network namespace or command configured: refusing to change this host's firewall")
        full = prefix + argv
        try:
            done = subprocess.run(full, input=stdin, capture_output=True, text=True, timeout=self.timeout)
        except FileNotFoundError as exc:
            raise BackendError(f"cannot run {full[0]}: {exc}") from exc
        except subprocess.TimeoutExpired as exc:
            raise BackendError(f"{' '.join(full)} timed out", permanent=False) from exc
        if check and done.returncode != 0:
            raise BackendError(f"{' '.join(argv[:2])} failed: {done.stderr.strip()[:2000]}")
        return done

    def _ns(self, options: dict) -> str:
        return str(options.get("namespace", self.namespace) or "")

    def _ensure_chain(self, namespace: str) -> None:
        for tool, *_ in TOOLS:
            self._run(namespace, [tool, "-w", "-N", CHAIN], check=False)
            if self._run(namespace, [tool, "-w", "-C", self.hook, "-j", CHAIN], check=False).returncode != 0:
                self._run(namespace, [tool, "-w", "-I", self.hook, "-j", CHAIN])

    def apply(self, spec: Spec) -> dict[str, Any]:
        namespace = self._ns(spec.options)
        self._ensure_chain(namespace)
        replaced = self._delete(namespace, spec.name)
        if spec.compiled.get("ipset"):
            self._run(namespace, ["ipset", "restore"], stdin=spec.compiled["ipset"])
        for _tool, restore, _save, key in TOOLS:
            script = "".join(
                line
                for line in spec.compiled.get(key, "").splitlines(keepends=True)
                if not line.startswith(f":{CHAIN} ")
            )
            if "-A " in script or "-I " in script:
                self._run(namespace, [restore, "-w", "--noflush"], stdin=script)
        installed = self.counters(namespace).get(spec.name)
        if not installed:
            raise BackendError("iptables-restore accepted the script but no rule carries the mitigation's comment")
        sets: dict[str, list[str]] = {}
        for line in spec.compiled.get("ipset", "").splitlines():
            words = line.split()
            if len(words) >= 2 and words[0] == "create":
                sets.setdefault(words[1], [])
            elif len(words) >= 3 and words[0] == "add":
                sets.setdefault(words[1], []).append(words[2])
        return {
            "namespace": namespace or self.command,
            "replaced": replaced,
            "installed": installed,
            "sets": sets,
            "rules": self.rule_lines(namespace).get(spec.name, []),
        }

    def rule_lines(self, namespace: str) -> dict[str, list[str]]:
        """Per mitigation name its rule lines as iptables-save prints them (family-prefixed, no
        counters); key "" holds the lines of Shieldwall's chains that carry no Shieldwall name."""
        out: dict[str, list[str]] = {}
        for tool, _restore, save, _key in TOOLS:
            done = self._run(namespace, [save, "-t", "filter"], check=False)
            for line in done.stdout.splitlines():
                if not line.startswith(f"-A {CHAIN}"):
                    continue
                m = COMMENT.search(line)
                out.setdefault(m.group(1) if m else "", []).append(f"{tool} {line}")
        return out

    def set_members(self, namespace: str) -> dict[str, list[str]]:
        done = self._run(namespace, ["ipset", "save"], check=False)
        out: dict[str, list[str]] = {}
        for line in done.stdout.splitlines():
            words = line.split()
            if len(words) >= 2 and words[0] == "create":
                out.setdefault(words[1], [])
            elif len(words) >= 3 and words[0] == "add":
                out.setdefault(words[1], []).append(_host(words[2]))
        return out

    def sync_lists(self, spec: Spec, desired: dict[str, list[tuple[str, int | None, str]]]) -> dict[str, Any]:
        """ipset add (with the item's own timeout, -exist refreshes it) and del, in one restore."""
        namespace = self._ns(spec.options)
        answer = json.loads(json.dumps(spec.answer))
        recorded = answer.setdefault("sets", {})
        lines, states, touched = [], {}, {}
        for key, items in desired.items():
            base = f"{spec.name}-{key}" if key else spec.name
            for family in (4, 6):
                set_name = f"{base}-{family}"[:31]
                members = {
                    _host(v): (ttl, v) for v, ttl, _ in items if ipaddress.ip_network(v, strict=False).version == family
                }
                if set_name not in recorded:
                    for _, value in members.values():
                        states[value] = f"not installed: ipset {set_name} does not exist (re-apply the mitigation)"
                    continue
                for member, (ttl, value) in sorted(members.items()):
                    lines.append(f"add {set_name} {member}{f' timeout {int(ttl)}' if ttl else ''} -exist")
                    states[value] = "installed"
                for member in sorted({_host(m) for m in recorded[set_name]} - set(members)):
                    lines.append(f"del {set_name} {member} -exist")
                touched[set_name] = sorted(members)
        if lines:
            done = self._run(namespace, ["ipset", "restore"], stdin="\n".join(lines) + "\n", check=False)
            if done.returncode != 0:
                error = done.stderr.strip()[:500]
                return {"answer": spec.answer, "items": {v: f"error: {error}" for v in states}, "error": error}
        recorded.update(touched)
        return {"answer": answer, "items": states, "changes": len(lines)}

    def remove(self, spec: Spec) -> dict[str, Any]:
        namespace = self._ns(spec.options)
        return {"namespace": namespace or self.command, "removed": self._delete(namespace, spec.name)}

    def verify(self, specs: list[Spec], options: dict) -> Verification:
        """Counters, plus content: each mitigation's rule lines (match and -j verdict, in order)
        and its ipsets' members against what apply and list syncs recorded; rules in the
        SHIELDWALL chains without a Shieldwall name are foreign."""
        namespace = self._ns(options)
        counters = self.counters(namespace)
        lines = self.rule_lines(namespace)
        members = self.set_members(namespace)
        wanted = {s.name for s in specs}
        differences = {}
        for spec in specs:
            if not counters.get(spec.name):
                continue
            found = _compare_lines(spec.answer.get("rules"), lines.get(spec.name, []))
            for set_name, recorded in (spec.answer.get("sets") or {}).items():
                now = members.get(set_name)
                if now is None:
                    found.append(f"ipset {set_name} is missing")
                    continue
                added = sorted(set(now) - {_host(m) for m in recorded})
                missing = sorted({_host(m) for m in recorded} - set(now))
                if added:
                    found.append(f"ipset {set_name}: {', '.join(added[:10])} added outside Shieldwall")
                if missing:
                    found.append(f"ipset {set_name}: {', '.join(missing[:10])} missing")
            if found:
                differences[spec.name] = found
        foreign = [f"foreign rule: {line}" for line in lines.get("", [])]
        return Verification(
            location=self.location(options),
            installed={n: counters.get(n) for n in wanted},
            unexpected=sorted(n for n in counters if n not in wanted) + foreign,
            differences=differences,
        )

    def counters(self, namespace: str) -> dict[str, dict]:
        out: dict[str, dict] = {}
        for _tool, _restore, save, _key in TOOLS:
            done = self._run(namespace, [save, "-c", "-t", "filter"], check=False)
            for line in done.stdout.splitlines():
                m = COMMENT.search(line)
                if not m or f"-A {CHAIN}" not in line:
                    continue
                entry = out.setdefault(m.group(1), {"rules": 0, "packets": 0, "bytes": 0})
                entry["rules"] += 1
                if c := COUNTERS.match(line):
                    entry["packets"] += int(c.group(1))
                    entry["bytes"] += int(c.group(2))
        return out

    def _delete(self, namespace: str, name: str) -> dict[str, int]:
        deleted = 0
        sub = f"{CHAIN}-{name}"[:28]
        for tool, restore, save, _key in TOOLS:
            done = self._run(namespace, [save, "-t", "filter"], check=False)
            lines = [
                "-D" + line[2:]
                for line in done.stdout.splitlines()
                if line.startswith("-A ") and (m := COMMENT.search(line)) and m.group(1) == name
            ]
            if lines:
                self._run(namespace, [restore, "-w", "--noflush"], stdin="*filter\n" + "\n".join(lines) + "\nCOMMIT\n")
                deleted += len(lines)
            if f":{sub} " in done.stdout:
                self._run(namespace, [tool, "-w", "-F", sub], check=False)
                self._run(namespace, [tool, "-w", "-X", sub], check=False)
        sets = self._run(namespace, ["ipset", "list", "-n"], check=False).stdout.split()
        destroyed = 0
        for set_name in sets:
            if set_name.startswith(f"{name}-"):
                self._run(namespace, ["ipset", "destroy", set_name], check=False)
                destroyed += 1
        return {"rules": deleted, "sets": destroyed}


def _host(value: str) -> str:
    net = ipaddress.ip_network(str(value).strip(), strict=False)
    return str(net.network_address) if net.prefixlen == net.max_prefixlen else str(net)


def _verdict(line: str) -> str:
    words = line.split()
    return words[words.index("-j") + 1] if "-j" in words[:-1] else "no verdict"


def _compare_lines(recorded: list[str] | None, current: list[str]) -> list[str]:
    if recorded is None:
        return []  # applied before content was recorded
    out = []
    if len(recorded) != len(current):
        out.append(f"{len(current)} rules installed, the ledger says {len(recorded)}")
    for i, (want, have) in enumerate(zip(recorded, current, strict=False), start=1):
        if want == have:
            continue
        if _verdict(want) != _verdict(have):
            out.append(f"rule {i}: verdict {_verdict(have)}, the ledger says {_verdict(want)}")
        else:
            out.append(f"rule {i} is now `{have}`, the ledger says `{want}`")
    return out
