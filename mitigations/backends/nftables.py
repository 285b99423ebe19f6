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

import ipaddress
import json
import re
import shlex
import subprocess
from typing import Any

from mitigations.backends import Backend, BackendError, Spec, Verification

TABLE = "shieldwall"
HOOK_CHAINS = {"input", "forward", "prerouting"}  # the base chains the compiler declares
NAME = re.compile(r"sw-[0-9]+(?:-[0-9a-z]+)?")


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
        listing = self.listing(namespace)
        installed = _counters(listing).get(spec.name)
        if not installed:
            raise BackendError("nft accepted the ruleset but no rule carries the mitigation's comment")
        return {
            "namespace": namespace or self.command,
            "replaced": removed,
            "installed": installed,
            "objects": objects_of(listing, spec.name),
        }

    def remove(self, spec: Spec) -> dict[str, Any]:
        namespace = self._namespace(spec)
        return {"namespace": namespace or self.command, "removed": self._delete(namespace, spec.name)}

    def verify(self, specs: list[Spec], options: dict) -> Verification:
        """Read the table once; per mitigation compare what is there with what apply recorded
        (its ``objects``), and name everything in the table that no active mitigation owns."""
        namespace = self._namespace(options)
        listing = self.listing(namespace)
        counters = _counters(listing)
        wanted = {s.name for s in specs}
        differences = {}
        for spec in specs:
            recorded = spec.answer.get("objects")
            if counters.get(spec.name) and recorded:
                found = compare_objects(recorded, objects_of(listing, spec.name))
                if found:
                    differences[spec.name] = found
        return Verification(
            location=self.location(options),
            installed={name: counters.get(name) for name in wanted},
            unexpected=sorted(n for n in counters if n not in wanted) + foreign_objects(listing, wanted),
            differences=differences,
        )

    def sync_lists(self, spec: Spec, desired: dict[str, list[tuple[str, int | None, str]]]) -> dict[str, Any]:
        namespace = self._namespace(spec)
        answer = json.loads(json.dumps(spec.answer))  # a copy to update
        recorded = answer.setdefault("objects", {}).setdefault("sets", {})
        actual = objects_of(self.listing(namespace), spec.name)["sets"]
        batch, states, touched = [], {}, {}
        for key, items in desired.items():
            base = f"{spec.name}-{key}" if key else spec.name
            wanted = {_canonical(v): (ttl, v) for v, ttl, _ in items}
            for family in (4, 6):
                set_name = f"{base}-v{family}"
                members = {m for m in wanted if ipaddress.ip_network(m).version == family}
                if set_name not in recorded or set_name not in actual:
                    for m in members:
                        states[wanted[m][1]] = f"not installed: {set_name} does not exist (re-apply the mitigation)"
                    continue
                before = {_canonical(m) for m in recorded[set_name]}
                for m in sorted(members - before):
                    ttl = wanted[m][0]
                    timeout = f" timeout {int(ttl)}s" if ttl else ""
                    batch.append(f"add element inet {TABLE} {set_name} {{ {m}{timeout} }}")
                present = {_canonical(m) for m in actual[set_name]}
                for m in sorted((before - members) & present):
                    batch.append(f"delete element inet {TABLE} {set_name} {{ {m} }}")
                touched[set_name] = sorted(members)
                for m in members:
                    states[wanted[m][1]] = "installed"
        if batch:
            done = self._run(namespace, "-f", "-", stdin="\n".join(batch) + "\n")
            if done.returncode != 0:
                error = done.stderr.strip()[:500]
                return {"answer": spec.answer, "items": {v: f"error: {error}" for v in states}, "error": error}
        recorded.update(touched)
        return {"answer": answer, "items": states, "changes": len(batch)}

    def counters(self, namespace: str) -> dict[str, dict]:
        """Per mitigation name: rules installed and their packet/byte counters."""
        return _counters(self.listing(namespace))

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


def _canonical(value: str) -> str:
    """An address or network as nft lists it: a host without /32 or /128."""
    net = ipaddress.ip_network(str(value).strip(), strict=False)
    return str(net.network_address) if net.prefixlen == net.max_prefixlen else str(net)


def _counters(listing: list[dict]) -> dict[str, dict]:
    out: dict[str, dict] = {}
    for item in listing:
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


# -- content: what one mitigation's rules, sets and chains are, and how they differ -------------


def _owned(name: str, object_name: str) -> bool:
    return object_name == name or object_name.startswith(f"{name}-")


def _plain_expr(expr: list) -> list:
    """A rule's expressions without what changes by itself (counter values)."""
    out = []
    for item in expr:
        if isinstance(item, dict) and "counter" in item:
            out.append({"counter": None})
        else:
            out.append(item)
    return out


def _element(value: Any) -> str:
    """One set element as text: an address, a prefix, a range; its timeout/expiry left out."""
    if isinstance(value, dict):
        if "elem" in value:
            return _element(value["elem"].get("val"))
        if "prefix" in value:
            return f"{value['prefix']['addr']}/{value['prefix']['len']}"
        if "range" in value:
            return "-".join(_element(v) for v in value["range"])
    return str(value)


def objects_of(listing: list[dict], name: str) -> dict:
    """The mitigation's rules (chain, position among its own, match and verdict), its sets'
    members, and the hook, priority and policy of the chains its rules sit in."""
    chains = {item["chain"]["name"]: item["chain"] for item in listing if "chain" in item}
    rules = []
    for item in listing:
        rule = item.get("rule")
        if rule and rule.get("comment") == name:
            rules.append({"chain": rule["chain"], "expr": _plain_expr(rule.get("expr", []))})
    sets = {}
    for item in listing:
        nft_set = item.get("set")
        if nft_set and _owned(name, nft_set["name"]) and "dynamic" not in (nft_set.get("flags") or []):
            sets[nft_set["name"]] = sorted(_element(e) for e in nft_set.get("elem", []))
    hooks = {}
    for chain_name in sorted({r["chain"] for r in rules}):
        chain = chains.get(chain_name, {})
        hooks[chain_name] = {key: chain.get(key) for key in ("hook", "prio", "policy")}
    return {"rules": rules, "sets": sets, "chains": hooks}


def describe(expr: list) -> str:
    """nft's JSON expressions of one rule as nft-like text, for an engineer reading the drift."""
    parts = []
    for item in expr:
        if not isinstance(item, dict) or not item:
            continue
        (key, value), *_ = item.items()
        if key == "match":
            op = "" if value.get("op") in ("==", "in") else f"{value.get('op')} "
            parts.append(f"{_operand(value.get('left'))} {op}{_operand(value.get('right'))}")
        elif key in ("accept", "drop", "reject", "return", "continue"):
            parts.append(key)
        elif key in ("jump", "goto"):
            parts.append(f"{key} {value.get('target')}")
        elif key == "counter":
            parts.append("counter")
        else:
            parts.append(key)
    return " ".join(parts)


def _operand(value: Any) -> str:
    if isinstance(value, dict):
        if "payload" in value:
            return f"{value['payload'].get('protocol', '')} {value['payload'].get('field', '')}".strip()
        if "meta" in value:
            return f"meta {value['meta'].get('key')}"
        if "set" in value:
            return "{ " + ", ".join(_element(v) for v in value["set"]) + " }"
        if "prefix" in value or "range" in value:
            return _element(value)
        if "&" in value:
            left, right = value["&"]
            return f"{_operand(left)} & {_operand(right)}"
        return json.dumps(value, separators=(",", ":"))[:120]
    if isinstance(value, str) and value.startswith("@"):
        return value
    return str(value)


def _verdict(expr: list) -> str:
    for item in expr:
        if isinstance(item, dict):
            for key in ("accept", "drop", "reject", "jump", "goto", "return"):
                if key in item:
                    return key if key not in ("jump", "goto") else f"{key} {item[key].get('target')}"
    return "no verdict"


def compare_objects(recorded: dict, current: dict) -> list[str]:
    """What differs, in words: verdict flipped, match changed, rule added/removed or moved,
    set member added/removed, chain hook/priority/policy changed."""
    out = []
    want, have = recorded.get("rules", []), current.get("rules", [])
    if len(want) != len(have):
        out.append(f"{len(have)} rules installed, the ledger says {len(want)}")
    for i, (w, h) in enumerate(zip(want, have, strict=False), start=1):
        if w == h:
            continue
        if w["chain"] != h["chain"]:
            out.append(f"rule {i} is in chain {h['chain']}, the ledger says {w['chain']}")
        elif _verdict(w["expr"]) != _verdict(h["expr"]):
            out.append(f"rule {i}: verdict {_verdict(h['expr'])}, the ledger says {_verdict(w['expr'])}")
        elif w["expr"] in [x["expr"] for x in have]:
            out.append(f"rule {i} moved: `{describe(h['expr'])}` is where `{describe(w['expr'])}` was")
        else:
            out.append(f"rule {i} now matches `{describe(h['expr'])}`, the ledger says `{describe(w['expr'])}`")
    for set_name, members in recorded.get("sets", {}).items():
        now = current.get("sets", {}).get(set_name)
        if now is None:
            out.append(f"set {set_name} is missing")
            continue
        added, removed = sorted(set(now) - set(members)), sorted(set(members) - set(now))
        if added:
            out.append(f"set {set_name}: {', '.join(added[:10])} added outside Shieldwall")
        if removed:
            out.append(f"set {set_name}: {', '.join(removed[:10])} missing")
    for chain_name, hook in recorded.get("chains", {}).items():
        now = current.get("chains", {}).get(chain_name)
        if now is not None and now != hook:
            out.append(
                f"chain {chain_name}: hook {now.get('hook')} priority {now.get('prio')} policy {now.get('policy')}, "
                f"the ledger says hook {hook.get('hook')} priority {hook.get('prio')} policy {hook.get('policy')}"
            )
    return out


def foreign_objects(listing: list[dict], wanted: set[str]) -> list[str]:
    """Rules, sets and chains in Shieldwall's table that no Shieldwall mitigation put there."""
    out = []
    for item in listing:
        rule, nft_set, chain = item.get("rule"), item.get("set"), item.get("chain")
        if rule and not NAME.fullmatch(rule.get("comment", "")):
            out.append(f"foreign rule in chain {rule['chain']}: {describe(rule.get('expr', []))}")
        elif nft_set and not nft_set["name"].startswith("sw-"):
            out.append(f"foreign set {nft_set['name']}")
        elif chain and chain["name"] not in HOOK_CHAINS and not chain["name"].startswith("sw-"):
            out.append(f"foreign chain {chain['name']}")
    return out
