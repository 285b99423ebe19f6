"""The export backend: nothing is installed; the compiled forms are offered for download.

For a customer who runs their own firewall, or an engineer who wants to paste a rule by
hand. "Applying" records that the forms were released.
"""

from __future__ import annotations

from typing import Any

from mitigations.backends import Backend, Spec


class ExportBackend(Backend):
    name = "export"
    production = False

    def __init__(self, **config: Any) -> None:
        self.config = config

    def apply(self, spec: Spec) -> dict[str, Any]:
        formats = sorted(k for k in spec.compiled if k != "refused")
        return {"exported": formats, "download": f"{spec.name}.<format>"}

    def remove(self, spec: Spec) -> dict[str, Any]:
        return {"note": "exported forms cannot be recalled; tell whoever applied them"}
