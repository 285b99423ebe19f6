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
import ipaddress
import json
import re
import time
from collections.abc import Callable
from typing import Any
from urllib.parse import quote

from mitigations.backends import Backend, BackendError, Spec, Verification
from mitigations.rules.cloudflare_plans import CUSTOM_PHASE, LIMITS, RATELIMIT_PHASE, Usage, phase_of, plan_problems

RETRY_STATUSES = {429, 500, 502, 503, 504, 520, 521, 522, 523, 524}
ENTRYPOINT = re.compile(r"^/(zones|accounts)/([^/]+)/rulesets/phases/([a-z_]+)/entrypoint$")
RULESET_RULES = re.compile(r"^/(zones|accounts)/([^/]+)/rulesets/([^/]+)/rules$")
COMPARED = ("expression", "action", "enabled", "ratelimit", "action_parameters")
TAG = re.compile(r"^\[(sw-[0-9]+(?:-[0-9a-z]+)?)\]")
# Cloudflare's account and zone ids are 32 hexadecimal characters. Ids read from the API's
# answers (rulesets, rules, lists, items) and the literal words of a path are single tokens:
# nothing an answer or a configuration holds can add a path segment, a query or a host.
CLOUDFLARE_ID = re.compile(r"^[0-9a-f]{32}$")
PATH_SEGMENT = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$")
QUERY = re.compile(r"^[A-Za-z_]+=[A-Za-z0-9_.~%-]*(?:&[A-Za-z_]+=[A-Za-z0-9_.~%-]*)*$")


def checked_path(path: str) -> str:
    """``path`` when every id in it is well formed; BackendError (before anything is sent) otherwise."""
    route, has_query, query = path.partition("?")
    segments = route.split("/")
    problem = ""
    if segments[0] != "" or len(segments) < 3:
        problem = "it is not an absolute API path"
    for previous, segment in zip(segments[1:], segments[2:], strict=False):
        if previous in ("zones", "accounts") and not CLOUDFLARE_ID.match(segment):
            problem = f"the {previous[:-1]} id {segment!r} is not 32 hexadecimal characters"
            break
        if not PATH_SEGMENT.match(segment):
            problem = f"{segment!r} is not a Cloudflare id"
            break
    if has_query and not QUERY.match(query):
        problem = f"the query {query!r} is not one the backend builds"
    if problem:
        raise BackendError(f"refused to call Cloudflare at {path!r}: {problem}")
    return path


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
        plan: str = "",
        **_: Any,
    ) -> None:
        self.plan = plan
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
        from console.outbound import DestinationRefused, OutboundRefused

        checked_path(path)
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
            except DestinationRefused as exc:  # the API base (or a redirect) goes where it may not
                raise BackendError(f"{method} {path} not sent: {exc}") from exc
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
    def check_plan(self, spec: Spec) -> str:
        """Refuse, before any write, what the zone's plan does not allow (``cloudflare_plan`` in the
        mitigation's options, else the backend's ``plan``). Counted limits read the zone's phase
        entry points and the account's lists first. Returns the plan checked ("" = unknown)."""
        plan = str(spec.options.get("cloudflare_plan") or self.plan or "").lower()
        requests = spec.compiled.get("requests", [])
        problems = plan_problems(requests, plan)
        if not problems and plan in LIMITS:
            problems = plan_problems(requests, plan, self._usage(requests))
        if problems:
            raise BackendError(
                f"refused by the Cloudflare {plan or 'any'} plan before sending anything: " + "; ".join(problems),
                answer={"refused_before_sending": problems, "requests": self.log},
            )
        return plan

    def _usage(self, requests: list[dict]) -> Usage:
        counts: dict[str, int | None] = {}
        for phase in {phase_of(r) for r in requests} & {CUSTOM_PHASE, RATELIMIT_PHASE}:
            zone = next(r["path"].split("/")[2] for r in requests if phase_of(r) == phase)
            status, payload = self.call("GET", f"/zones/{zone}/rulesets/phases/{phase}/entrypoint")
            if status == 404:
                counts[phase] = 0
            elif status == 200:
                counts[phase] = len((payload.get("result") or {}).get("rules") or [])
            else:
                raise BackendError(f"cannot count the zone's {phase} rules ({status}): {_messages(payload)}")
        lists = items = None
        list_requests = [r for r in requests if r["path"].startswith("/accounts/") and "/rules/lists" in r["path"]]
        if list_requests:
            account = list_requests[0]["path"].split("/")[2]
            status, payload = self.call("GET", f"/accounts/{account}/rules/lists")
            if status != 200:
                raise BackendError(f"cannot count the account's lists ({status}): {_messages(payload)}")
            found = payload.get("result") or []
            lists, items = len(found), sum(int(entry.get("num_items", 0)) for entry in found)
        return Usage(
            custom_rules=counts.get(CUSTOM_PHASE),
            ratelimit_rules=counts.get(RATELIMIT_PHASE),
            lists=lists,
            list_items=items,
        )

    def apply(self, spec: Spec) -> dict[str, Any]:
        self.log = []
        resources: list[dict] = []
        list_id = ""
        self.check_plan(spec)
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
                if path.endswith("/items") and isinstance(body, list):
                    for resource in resources:
                        if resource["kind"] == "list" and path.startswith(resource["path"] + "/"):
                            resource["items"] = sorted(str(entry.get("ip", "")) for entry in body)
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
            # What the drift check compares: the rule as sent.
            "rule": {key: rule[key] for key in COMPARED if key in rule},
        }

    def list_items(self, list_path: str, max_pages: int = 1000) -> tuple[int, list[dict]]:
        """Every item of a list, following Cloudflare's cursor pagination (result_info.cursors.after)."""
        items: list[dict] = []
        cursor = ""
        for _ in range(max_pages):
            query = f"?cursor={quote(cursor, safe='')}" if cursor else ""
            status, payload = self.call("GET", f"{list_path}/items{query}")
            if status != 200:
                return status, items
            items.extend(i for i in payload.get("result") or [] if isinstance(i, dict))
            cursor = str(((payload.get("result_info") or {}).get("cursors") or {}).get("after") or "")
            if not cursor:
                break
        return 200, items

    def sync_lists(self, spec: Spec, desired: dict[str, list[tuple[str, int | None, str]]]) -> dict[str, Any]:
        """The mitigation's own Cloudflare list: POST the items the ledger added, DELETE (by item id)
        those it removed. A ``$list`` named in a rule is Cloudflare's list of that name, not ours."""
        self.log = []
        answer = json.loads(json.dumps(spec.answer))
        states: dict[str, str] = {}
        lists = [r for r in answer.get("resources", []) if r["kind"] == "list"]
        for key, items in desired.items():
            if key or not lists:
                for value, _, _ in items:
                    states[value] = "not on cloudflare: the rule uses Cloudflare's own list of that name"
                continue
            resource = lists[0]
            wanted = {_host(v): c for v, _, c in items}
            before = set(resource.get("items", []))
            try:
                new = [(ip, c) for ip, c in sorted(wanted.items()) if ip not in before]
                added = [{"ip": ip, "comment": c} if c else {"ip": ip} for ip, c in new]
                if added:
                    self._ok("POST", f"{resource['path']}/items", added)
                gone = before - set(wanted)
                if gone:
                    status, listed = self.list_items(resource["path"])
                    if status != 200:
                        raise BackendError(f"Cloudflare refused GET {resource['path']}/items ({status})")
                    ids = [{"id": i["id"]} for i in listed if _host(i.get("ip", "")) in gone]
                    if ids:
                        self._ok("DELETE", f"{resource['path']}/items", {"items": ids})
            except BackendError as exc:
                failed = {v: f"error: {exc.message}" for v, _, _ in items}
                return {"answer": spec.answer, "items": failed, "error": exc.message}
            resource["items"] = sorted(wanted)
            states.update({v: "installed" for v, _, _ in items})
        return {"answer": answer, "items": states, "requests": self.log}

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
            try:
                status, payload = self.call("DELETE", resource["path"])
            except BackendError:
                if strict:
                    raise
                continue  # cleaning up after a failure: delete what can be deleted
            if strict and not (200 <= status < 300 or status == 404):
                raise BackendError(f"Cloudflare refused DELETE {resource['path']} ({status}): {_messages(payload)}")

    def verify(self, specs: list[Spec], options: dict) -> Verification:
        """Read back every ruleset and list the mitigations created; compare each rule (expression,
        action, enabled, rate limit) and each list's items with what was sent, and name rules tagged
        ``[sw-...]`` in those rulesets that no active mitigation owns."""
        installed: dict[str, dict | None] = {}
        differences: dict[str, list[str]] = {}
        rulesets: dict[str, list[dict]] = {}
        wanted = {spec.name for spec in specs}
        for spec in specs:
            present = True
            found: list[str] = []
            for resource in spec.answer.get("resources", []):
                if resource["kind"] == "ruleset_rule":
                    if resource["ruleset"] not in rulesets:
                        status, payload = self.call("GET", resource["ruleset"])
                        rulesets[resource["ruleset"]] = (
                            (payload.get("result") or {}).get("rules", []) if status == 200 else []
                        )
                    rule = next((r for r in rulesets[resource["ruleset"]] if r.get("id") == resource["id"]), None)
                    if rule is None:
                        present = False
                        continue
                    for key, sent in (resource.get("rule") or {}).items():
                        if rule.get(key) != sent:
                            found.append(f"rule {resource['id']}: {key} is {rule.get(key)!r}, the ledger says {sent!r}")
                elif resource["kind"] == "list":
                    status, listed = self.list_items(resource["path"])
                    if status != 200:
                        present = False
                        continue
                    if "items" in resource:
                        now = {_host(item.get("ip", "")) for item in listed}
                        added, missing = sorted(now - set(resource["items"])), sorted(set(resource["items"]) - now)
                        if added:
                            found.append(f"list {resource['id']}: {', '.join(added[:10])} added outside Shieldwall")
                        if missing:
                            found.append(f"list {resource['id']}: {', '.join(missing[:10])} missing")
                else:
                    status, _ = self.call("GET", resource["path"])
                    present = present and status == 200
            installed[spec.name] = {"resources": len(spec.answer.get("resources", []))} if present else None
            if present and found:
                differences[spec.name] = found
        unexpected = []
        for path, rules in rulesets.items():
            for rule in rules:
                tag = TAG.match(str(rule.get("description", "")))
                if tag and tag.group(1) not in wanted:
                    unexpected.append(f"{tag.group(1)}: rule {rule.get('id')} in {path}")
        return Verification(
            location=self.location(options), installed=installed, unexpected=unexpected, differences=differences
        )


def _host(value: str) -> str:
    try:
        net = ipaddress.ip_network(str(value).strip(), strict=False)
    except ValueError:
        return str(value)
    return str(net.network_address) if net.prefixlen == net.max_prefixlen else str(net)


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
