"""Apply mitigations through Cloudflare's API: WAF custom and rate limiting rules, IP Access
rules, Lists and Magic Firewall rules.

Each compiled request is sent as compiled, with two exceptions that keep other people's
rules safe: a ruleset rule compiled as ``PUT .../phases/<phase>/entrypoint`` (which
*replaces* every rule of the phase) is sent as ``POST .../rulesets/<id>/rules`` (adds
one) once a ``GET`` of the entry point gives the ruleset id; only when the zone has no
entry point yet is the ``PUT`` sent. ``{list_id}`` in a path is filled from the answer
that created the list.

429 and 5xx are retried with exponential backoff, honouring ``Retry-After``; any other
4xx is permanent and fails the mitigation with the API's ``errors[].message``. What was
created is recorded (its delete path) so removal and the drift check find it; when a
later request fails, what the earlier ones created is deleted again.
"""

from __future__ import annotations

import contextlib
import json
import re
import time
from collections.abc import Callable
from typing import Any

from mitigations.backends import Backend, BackendError, Spec, Verification

RETRY_STATUSES = {429, 500, 502, 503, 504, 520, 521, 522, 523, 524}
ENTRYPOINT = re.compile(r"^/(zones|accounts)/([^/]+)/rulesets/phases/([a-z_]+)/entrypoint$")
RULESET_RULES = re.compile(r"^/(zones|accounts)/([^/]+)/rulesets/([^/]+)/rules$")


class CloudflareBackend(Backend):
    name = "cloudflare"
    retries_itself = True  # 429/5xx retried inside call(): the ledger does not retry again

    def __init__(
        self,
        *,
        base_url: str = "https://api.cloudflare.com/client/v4",
        token: str = "",
        max_retries: int = 5,
        backoff: float = 1.0,
        max_backoff: float = 60.0,
        timeout: float = 15.0,
        sleep: Callable[[float], None] = time.sleep,
        request: Callable[..., Any] | None = None,
        **_: Any,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.token = token
        self.max_retries = max_retries
        self.backoff = backoff
        self.max_backoff = max_backoff
        self.timeout = timeout
        self.sleep = sleep
        if request is None:
            from console.outbound import request as outbound_request

            request = outbound_request
        self.request = request
        self.log: list[dict] = []

    # -- HTTP --------------------------------------------------------------------------
    def call(self, method: str, path: str, body: Any = None) -> tuple[int, dict]:
        """One API call with retries on 429/5xx; returns (status, parsed JSON) for anything else."""
        from console.outbound import OutboundRefused

        headers = {"Authorization": f"Bearer {self.token}", "Accept": "application/json"}
        data = None
        if body is not None:
            data = json.dumps(body).encode()
            headers["Content-Type"] = "application/json"
        attempt = 0
        while True:
            try:
                resp = self.request(
                    self.base_url + path, method=method, body=data, headers=headers, timeout=self.timeout
                )
            except OutboundRefused as exc:
                status, payload, retry_after = 0, {"errors": [{"message": str(exc)}]}, None
            else:
                status = resp.status
                try:
                    payload = json.loads(resp.body or b"{}")
                except ValueError:
                    payload = {"errors": [{"message": resp.body[:300].decode("utf-8", "replace")}]}
                retry_after = _header(resp.headers, "Retry-After")
            self.log.append({"method": method, "path": path, "status": status})
            if status not in RETRY_STATUSES and status != 0:
                return status, payload if isinstance(payload, dict) else {"result": payload}
            if attempt >= self.max_retries:
                raise BackendError(
                    f"Cloudflare kept answering {status or 'no answer'} to {method} {path} after "
                    f"{attempt + 1} attempts: {_messages(payload)}",
                    permanent=False,
                )
            delay = min(self.max_backoff, self.backoff * (2**attempt))
            if retry_after is not None:
                with contextlib.suppress(ValueError):  # an HTTP date: keep the exponential delay
                    delay = min(self.max_backoff, max(0.0, float(retry_after)))
            self.sleep(delay)
            attempt += 1

    def _ok(self, method: str, path: str, body: Any = None) -> dict:
        status, payload = self.call(method, path, body)
        if 200 <= status < 300 and payload.get("success", True):
            return payload
        raise BackendError(f"Cloudflare refused {method} {path} ({status}): {_messages(payload)}", answer=payload)

    # -- the backend -------------------------------------------------------------------
    def apply(self, spec: Spec) -> dict[str, Any]:
        self.log = []
        resources: list[dict] = []
        list_id = ""
        try:
            for req in spec.compiled.get("requests", []):
                method, path, body = req["method"], req["path"].replace("{list_id}", list_id), req["body"]
                if method == "PUT" and (m := ENTRYPOINT.match(path)):
                    resources.append(self._add_phase_rule(m.group(1), m.group(2), m.group(3), body["rules"][0]))
                    continue
                if method == "POST" and (m := RULESET_RULES.match(path)):
                    payload = self._ok(method, path, body)
                    resources.append(self._rule_resource(m.group(1), m.group(2), payload, body))
                    continue
                payload = self._ok(method, path, body)
                result = payload.get("result")
                if path.endswith("/rules/lists") and isinstance(result, dict):
                    list_id = str(result["id"])
                    resources.append({"kind": "list", "path": f"{path}/{list_id}", "id": list_id})
                elif path.endswith("/access_rules/rules") and isinstance(result, dict):
                    resources.append({"kind": "access_rule", "path": f"{path}/{result['id']}", "id": result["id"]})
        except BackendError as exc:
            self._delete_all(resources)
            exc.answer = {"requests": self.log, "error": exc.message, "cleaned_up": resources}
            raise
        return {"resources": resources, "requests": self.log}

    def _add_phase_rule(self, scope: str, scope_id: str, phase: str, rule: dict) -> dict:
        status, payload = self.call("GET", f"/{scope}/{scope_id}/rulesets/phases/{phase}/entrypoint")
        if status == 200 and isinstance(payload.get("result"), dict):
            ruleset_id = payload["result"]["id"]
            added = self._ok("POST", f"/{scope}/{scope_id}/rulesets/{ruleset_id}/rules", rule)
            return self._rule_resource(scope, scope_id, added, rule)
        if status != 404:
            raise BackendError(f"Cloudflare refused GET of the {phase} entry point ({status}): {_messages(payload)}")
        created = self._ok("PUT", f"/{scope}/{scope_id}/rulesets/phases/{phase}/entrypoint", {"rules": [rule]})
        return self._rule_resource(scope, scope_id, created, rule)

    def _rule_resource(self, scope: str, scope_id: str, payload: dict, rule: dict) -> dict:
        result = payload.get("result") or {}
        ruleset_id = result.get("id", "")
        ours = [r for r in result.get("rules", []) if r.get("description") == rule.get("description")]
        if not ours:
            raise BackendError("Cloudflare accepted the rule but the ruleset it returned does not contain it")
        rule_id = ours[-1]["id"]
        return {
            "kind": "ruleset_rule",
            "path": f"/{scope}/{scope_id}/rulesets/{ruleset_id}/rules/{rule_id}",
            "ruleset": f"/{scope}/{scope_id}/rulesets/{ruleset_id}",
            "id": rule_id,
        }

    def remove(self, spec: Spec) -> dict[str, Any]:
        self.log = []
        resources = spec.answer.get("resources", [])
        found = False
        if not resources:
            # No handle recorded (the worker died inside the apply call): find what Cloudflare holds
            # under this mitigation's tag, so the undo misses nothing the apply may have created.
            resources, found = self.find(spec), True
        self._delete_all(resources, strict=True)
        return {"deleted": [r["path"] for r in resources], "found_by_tag": found, "requests": self.log}

    def find(self, spec: Spec) -> list[dict]:
        """The resources tagged ``[<name>]`` (rule description, access-rule notes, list name), in creation order."""
        tag = f"[{spec.name}]"
        lists: list[dict] = []
        rules: list[dict] = []
        for req in spec.compiled.get("requests", []):
            method, path, body = req["method"], req["path"], req.get("body") or {}
            if (m := ENTRYPOINT.match(path)) and method == "PUT":
                status, payload = self.call("GET", path)
                ruleset = (payload.get("result") or {}) if status == 200 else {}
                base = f"/{m.group(1)}/{m.group(2)}/rulesets/{ruleset.get('id', '')}"
                rules += [
                    {"kind": "ruleset_rule", "path": f"{base}/rules/{r['id']}", "ruleset": base, "id": r["id"]}
                    for r in ruleset.get("rules", [])
                    if str(r.get("description", "")).startswith(tag)
                ]
            elif (m := RULESET_RULES.match(path)) and method == "POST":
                base = f"/{m.group(1)}/{m.group(2)}/rulesets/{m.group(3)}"
                status, payload = self.call("GET", base)
                rules += [
                    {"kind": "ruleset_rule", "path": f"{base}/rules/{r['id']}", "ruleset": base, "id": r["id"]}
                    for r in ((payload.get("result") or {}) if status == 200 else {}).get("rules", [])
                    if str(r.get("description", "")).startswith(tag)
                ]
            elif path.endswith("/access_rules/rules") and method == "POST":
                status, payload = self.call("GET", f"{path}?per_page=1000")
                rules += [
                    {"kind": "access_rule", "path": f"{path}/{r['id']}", "id": r["id"]}
                    for r in ((payload.get("result") or []) if status == 200 else [])
                    if str(r.get("notes", "")).startswith(tag)
                ]
            elif path.endswith("/rules/lists") and method == "POST":
                status, payload = self.call("GET", path)
                lists += [
                    {"kind": "list", "path": f"{path}/{r['id']}", "id": r["id"]}
                    for r in ((payload.get("result") or []) if status == 200 else [])
                    if r.get("name") == body.get("name")
                ]
        return lists + rules  # lists first: _delete_all removes in reverse, rules before their lists

    def _delete_all(self, resources: list[dict], strict: bool = False) -> None:
        # Rules before the lists they reference: reverse order of creation.
        for resource in reversed(resources):
            status, payload = self.call("DELETE", resource["path"])
            if strict and not (200 <= status < 300 or status == 404):
                raise BackendError(f"Cloudflare refused DELETE {resource['path']} ({status}): {_messages(payload)}")

    def verify(self, specs: list[Spec], options: dict) -> Verification:
        installed: dict[str, dict | None] = {}
        for spec in specs:
            present = True
            for resource in spec.answer.get("resources", []):
                if resource["kind"] == "ruleset_rule":
                    status, payload = self.call("GET", resource["ruleset"])
                    rules = (payload.get("result") or {}).get("rules", []) if status == 200 else []
                    present = present and any(r.get("id") == resource["id"] for r in rules)
                else:
                    status, _ = self.call("GET", resource["path"])
                    present = present and status == 200
            installed[spec.name] = {"resources": len(spec.answer.get("resources", []))} if present else None
        return Verification(location=self.location(options), installed=installed)


def _header(headers: dict, name: str) -> str | None:
    for key, value in (headers or {}).items():
        if key.lower() == name.lower():
            return value
    return None


def _messages(payload: Any) -> str:
    if isinstance(payload, dict):
        errors = payload.get("errors") or []
        texts = [str(e.get("message", e)) if isinstance(e, dict) else str(e) for e in errors]
        if texts:
            return "; ".join(texts)
    return "no error message"
