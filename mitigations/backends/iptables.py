"""Apply mitigations with iptables-restore (IPv4 and IPv6) and ipset.

Rules go into the ``SHIELDWALL`` chain, hooked once from INPUT (``-C`` before ``-I``, so
never twice). The chain is created by the backend and the compiled script's own
``:SHIELDWALL - [0:0]`` line is dropped before ``iptables-restore --noflush``: declaring
an existing chain in a restore file flushes it, which would wipe every other mitigation.

Removal reads ``iptables-save`` and deletes the rules whose comment is the mitigation's
name, then its sub-chain and its ipsets. Reading back uses ``iptables-save -c`` counters.
"""

from __future__ import annotations

import re
import shlex
import subprocess
from typing import Any

from mitigations.backends import Backend, BackendError, Spec, Verification

CHAIN = "SHIELDWALL"
COMMENT = re.compile(r'--comment "?(sw-[0-9]+)"?')
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

    def _run(self, namespace: str, argv: list[str], stdin: str | None = None, check: bool = True):  # noqa: ANN202
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
        return {"namespace": namespace or self.command, "replaced": replaced, "installed": installed}

    def remove(self, spec: Spec) -> dict[str, Any]:
        namespace = self._ns(spec.options)
        return {"namespace": namespace or self.command, "removed": self._delete(namespace, spec.name)}

    def verify(self, specs: list[Spec], options: dict) -> Verification:
        counters = self.counters(self._ns(options))
        wanted = {s.name for s in specs}
        return Verification(
            location=self.location(options),
            installed={n: counters.get(n) for n in wanted},
            unexpected=sorted(n for n in counters if n not in wanted),
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
