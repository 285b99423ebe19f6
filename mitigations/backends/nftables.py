"""Apply mitigations with ``nft`` inside a named network namespace or through a configured command.

Never on the console's own host by default: with neither a namespace nor a command the
backend refuses (``BackendError``) before running anything.

Everything lives in ``table inet shieldwall``. A mitigation's rules carry
``comment "sw-<id>"`` and its sets and extra chains are named ``sw-<id>...``, so the
backend removes exactly that mitigation: it lists the table as JSON (``nft -j list
table inet shieldwall``), deletes the rules by handle, then its chains and sets, in one
``nft -f`` batch (atomic: all or nothing).

Applying first removes what is installed under the same name, so a retried apply never
installs twice. Reading back returns per name the rule count and the packet and byte
counters: the hit counters on the ledger, and the drift check's evidence.
"""

from __future__ import annotations

import json
import re
import shlex
import subprocess
from typing import Any

from mitigations.backends import Backend, BackendError, Spec, Verification

TABLE = "shieldwall"
NAME = re.compile(r"sw-[0-9]+")


class NftablesBackend(Backend):
    name = "nftables"

    def __init__(
        self, *, namespace: str = "", command: str = "", nft: str = "nft", timeout: float = 30.0, **_: Any
    ) -> None:
        self.namespace = namespace
        self.command = command
        self.nft = nft
        self.timeout = timeout

    def location(self, options: dict) -> str:
        ns = options.get("namespace", self.namespace)
        return f"nftables:{ns or options.get('command', self.command) or 'unconfigured'}"

    # -- commands ----------------------------------------------------------------------
    def _argv(self, namespace: str, *args: str) -> list[str]:
        if namespace:
            prefix = ["ip", "netns", "exec", namespace]
        elif self.command:
            prefix = shlex.split(self.command)
        else:
            raise BackendError("no network namespace or command configured: refusing to change this host's firewall")
        return [*prefix, self.nft, *args]

    def _run(self, namespace: str, *args: str, stdin: str | None = None) -> subprocess.CompletedProcess:
        argv = self._argv(namespace, *args)
        try:
            return subprocess.run(argv, input=stdin, capture_output=True, text=True, timeout=self.timeout)
        except FileNotFoundError as exc:
            raise BackendError(f"cannot run {argv[0]}: {exc}") from exc
        except subprocess.TimeoutExpired as exc:
            raise BackendError(f"{' '.join(argv)} timed out", permanent=False) from exc

    def _namespace(self, spec_or_options: Spec | dict) -> str:
        options = spec_or_options.options if isinstance(spec_or_options, Spec) else spec_or_options
        return str(options.get("namespace", self.namespace) or "")

    def listing(self, namespace: str) -> list[dict]:
        """The table's objects as nft's JSON, or [] if the table does not exist yet."""
        done = self._run(namespace, "-j", "list", "table", "inet", TABLE)
        if done.returncode != 0:
            if "No such file or directory" in done.stderr or "does not exist" in done.stderr:
                return []
            raise BackendError(f"nft list failed: {done.stderr.strip()}")
        try:
            return json.loads(done.stdout).get("nftables", [])
        except json.JSONDecodeError as exc:
            raise BackendError(f"nft answered unreadable JSON: {exc}") from exc

    # -- the backend -------------------------------------------------------------------
    def apply(self, spec: Spec) -> dict[str, Any]:
        namespace = self._namespace(spec)
        text = spec.compiled.get("ruleset", "")
        if not text:
            raise BackendError("nothing compiled for nftables")
        removed = self._delete(namespace, spec.name)
        done = self._run(namespace, "-f", "-", stdin=text)
        if done.returncode != 0:
            raise BackendError(f"nft -f refused the ruleset: {done.stderr.strip()[:2000]}")
        installed = self.counters(namespace).get(spec.name)
        if not installed:
            raise BackendError("nft accepted the ruleset but no rule carries the mitigation's comment")
        return {"namespace": namespace or self.command, "replaced": removed, "installed": installed}

    def remove(self, spec: Spec) -> dict[str, Any]:
        namespace = self._namespace(spec)
        return {"namespace": namespace or self.command, "removed": self._delete(namespace, spec.name)}

    def verify(self, specs: list[Spec], options: dict) -> Verification:
        namespace = self._namespace(options)
        counters = self.counters(namespace)
        wanted = {s.name for s in specs}
        return Verification(
            location=self.location(options),
            installed={name: counters.get(name) for name in wanted},
            unexpected=sorted(n for n in counters if n not in wanted),
        )

    def counters(self, namespace: str) -> dict[str, dict]:
        """Per mitigation name: rules installed and their packet/byte counters."""
        out: dict[str, dict] = {}
        for item in self.listing(namespace):
            rule = item.get("rule")
            if not rule or not NAME.fullmatch(rule.get("comment", "")):
                continue
            entry = out.setdefault(rule["comment"], {"rules": 0, "packets": 0, "bytes": 0})
            entry["rules"] += 1
            for expr in rule.get("expr", []):
                if isinstance(expr, dict) and "counter" in expr:
                    entry["packets"] += int(expr["counter"].get("packets", 0))
                    entry["bytes"] += int(expr["counter"].get("bytes", 0))
        return out

    def _delete(self, namespace: str, name: str) -> dict[str, int]:
        """Delete every rule, chain and set of ``name`` in one atomic batch."""
        listing = self.listing(namespace)
        rules, chains, sets = [], [], []
        prefix = f"{name}-"
        for item in listing:
            rule, chain, nft_set = item.get("rule"), item.get("chain"), item.get("set")
            if rule and rule.get("comment") == name:
                rules.append(f"delete rule inet {TABLE} {rule['chain']} handle {rule['handle']}")
            elif chain and (chain["name"] == name or chain["name"].startswith(prefix)):
                chains.append(f"delete chain inet {TABLE} {chain['name']}")
            elif nft_set and nft_set["name"].startswith(prefix):
                sets.append(f"delete set inet {TABLE} {nft_set['name']}")
        batch = rules + chains + sets
        if batch:
            done = self._run(namespace, "-f", "-", stdin="\n".join(batch) + "\n")
            if done.returncode != 0:
                raise BackendError(f"nft could not delete {name}: {done.stderr.strip()[:2000]}")
        return {"rules": len(rules), "chains": len(chains), "sets": len(sets)}
