"""Enforcement backends: plain Python classes that install, remove and read back one mitigation.

A backend never touches the database. Services hand it a ``Spec`` (the mitigation's
name, its compiled form for this backend, its options and, for removal, what the backend
answered when applying) and record what it returns. ``BackendError`` says whether
retrying could help (``permanent=False``: a 429, a 5xx, a timeout).

Registry: ``get_backend(name, **config)``; names are those of ``BACKENDS``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


class BackendError(Exception):
    """Applying, removing or reading back failed; the message is what an engineer should read."""

    def __init__(self, message: str, *, permanent: bool = True, answer: dict | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.permanent = permanent
        self.answer = answer or {}


@dataclass
class Spec:
    name: str  # sw-<id>: rule comment, chain and set prefix, Cloudflare description tag
    compiled: dict
    options: dict = field(default_factory=dict)
    answer: dict = field(default_factory=dict)


@dataclass
class Verification:
    """What a backend location really holds: per name its counters (None = missing), plus strays.

    ``differences``: per name, how what is installed differs from what the ledger recorded at
    apply (match, verdict, set members, position); ``unexpected``: Shieldwall-named objects no
    active mitigation owns and objects in Shieldwall's own table/ruleset that nobody put there
    through Shieldwall (foreign)."""

    location: str
    installed: dict[str, dict | None]
    unexpected: list[str] = field(default_factory=list)
    differences: dict[str, list[str]] = field(default_factory=dict)


class Backend:
    name = ""
    production = True  # False: nothing is enforced (an export); still approved, never drift-checked
    retries_itself = False  # True: transient errors were already retried inside the call

    def location(self, options: dict) -> str:
        return self.name

    def apply(self, spec: Spec) -> dict[str, Any]:
        raise NotImplementedError

    def remove(self, spec: Spec) -> dict[str, Any]:
        raise NotImplementedError

    def verify(self, specs: list[Spec], options: dict) -> Verification | None:
        """None when the backend cannot read back (an export)."""
        return None

    def sync_lists(self, spec: Spec, desired: dict[str, list[tuple[str, int | None, str]]]) -> dict[str, Any]:
        """Bring the installed copies of a mitigation's lists to ``desired``: per list key ("" for
        an IP-list mitigation, else the ``$name`` its rule uses) the (value, seconds left or None,
        comment) of every current item. Adds what the ledger added and removes what it removed
        since apply; members changed outside Shieldwall are left for the drift check to report.
        Returns {"answer": the updated apply answer, "items": {value: state}}."""
        return {"answer": spec.answer, "items": {}}


def _registry() -> dict[str, type[Backend]]:
    from mitigations.backends.cloudflare import CloudflareBackend
    from mitigations.backends.export import ExportBackend
    from mitigations.backends.iptables import IptablesBackend
    from mitigations.backends.nftables import NftablesBackend

    return {b.name: b for b in (NftablesBackend, IptablesBackend, CloudflareBackend, ExportBackend)}


BACKENDS = ("nftables", "iptables", "cloudflare", "export")


def get_backend(name: str, **config: Any) -> Backend:
    registry = _registry()
    if name not in registry:
        raise ValueError(f"unknown backend {name!r}; use one of {', '.join(BACKENDS)}")
    return registry[name](**config)
