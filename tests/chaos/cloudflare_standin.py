"""A Cloudflare API stand-in run as its own process: phase entry-point rulesets with state, and faults.

Serves what the Cloudflare backend uses for ruleset rules (Magic Firewall, WAF custom rules):
``GET``/``PUT /{accounts|zones}/{id}/rulesets/phases/{phase}/entrypoint``, ``POST
/{scope}/{id}/rulesets/{ruleset}/rules``, ``DELETE .../rules/{rule}`` and ``GET`` of a ruleset,
answering in Cloudflare's envelope (``success``, ``errors``, ``result``). A rule-creating request
takes the next scripted fault, as the test programs them through the control paths:

* ``{"status": 429, "retry_after": "1"}`` or ``{"status": 500}``: refused, nothing created;
* ``{"hold": true}``: the rule is created (as Cloudflare would) and the answer held back until
  ``POST /_release {"answer": true|false}``: answered, or the connection dropped unanswered.

``GET /_state``: every rule held, the requests seen and whether a request is held now.
Usage: ``python -m tests.chaos.cloudflare_standin PORT``.
"""

from __future__ import annotations

import json
import re
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

ENTRYPOINT = re.compile(r"^/(accounts|zones)/([^/]+)/rulesets/phases/([a-z_]+)/entrypoint$")
RULES = re.compile(r"^/(accounts|zones)/([^/]+)/rulesets/([^/]+)/rules$")
RULE = re.compile(r"^/(accounts|zones)/([^/]+)/rulesets/([^/]+)/rules/([^/]+)$")
RULESET = re.compile(r"^/(accounts|zones)/([^/]+)/rulesets/([^/]+)$")


class State:
    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.rulesets: dict[str, dict] = {}  # ruleset id -> {"id", "phase", "scope", "rules"}
        self.entrypoints: dict[str, str] = {}  # entry-point path -> ruleset id
        self.faults: list[dict] = []
        self.seen: list[list] = []  # [method, path, status]
        self.holding = False
        self.release = threading.Event()
        self.answer_held = False
        self.counter = 0

    def next_id(self, prefix: str) -> str:
        self.counter += 1
        return f"{prefix}{self.counter:030d}"[:32]


STATE = State()


def _send(h: BaseHTTPRequestHandler, status: int, result: Any, headers: dict | None = None) -> None:
    data = json.dumps(
        {
            "success": status < 400,
            "errors": [] if status < 400 else [{"code": status, "message": f"stand-in answered {status}"}],
            "messages": [],
            "result": result,
        }
    ).encode()
    h.send_response(status)
    for key, value in (headers or {}).items():
        h.send_header(key, value)
    h.send_header("Content-Type", "application/json")
    h.send_header("Content-Length", str(len(data)))
    h.end_headers()
    h.wfile.write(data)


def _create(h: BaseHTTPRequestHandler, make: Any) -> None:
    """A rule-creating request: the next fault, or create (and maybe hold the answer)."""
    with STATE.lock:
        fault = STATE.faults.pop(0) if STATE.faults else {}
    if fault.get("status"):
        STATE.seen[-1][2] = fault["status"]
        headers = {"Retry-After": fault["retry_after"]} if fault.get("retry_after") else {}
        return _send(h, fault["status"], None, headers)
    with STATE.lock:
        ruleset = make()
    STATE.seen[-1][2] = 200
    if fault.get("hold"):
        STATE.release.clear()
        STATE.holding = True
        STATE.release.wait(300)
        STATE.holding = False
        if not STATE.answer_held:
            STATE.seen[-1][2] = "dropped"
            h.close_connection = True
            return None
    return _send(h, 200, ruleset)


def handle(h: BaseHTTPRequestHandler) -> None:
    length = int(h.headers.get("Content-Length") or 0)
    body = json.loads(h.rfile.read(length)) if length else None
    path = h.path.split("?", 1)[0].removeprefix("/client/v4")
    if path == "/_state":
        with STATE.lock:
            rules = [
                {"ruleset": rs["id"], "id": r["id"], "description": r.get("description", "")}
                for rs in STATE.rulesets.values()
                for r in rs["rules"]
            ]
            return _send(h, 200, {"rules": rules, "seen": STATE.seen, "holding": STATE.holding})
    if path == "/_script":
        STATE.faults = list(body["faults"])
        return _send(h, 200, {"faults": len(STATE.faults)})
    if path == "/_release":
        STATE.answer_held = bool(body.get("answer"))
        STATE.release.set()
        return _send(h, 200, {})
    STATE.seen.append([h.command, path, None])
    if m := ENTRYPOINT.match(path):
        ruleset_id = STATE.entrypoints.get(path)
        if h.command == "GET":
            STATE.seen[-1][2] = 200 if ruleset_id else 404
            return _send(h, 200, STATE.rulesets[ruleset_id]) if ruleset_id else _send(h, 404, None)
        if h.command == "PUT":

            def make() -> dict:
                rid = STATE.entrypoints.get(path) or STATE.next_id("rs")
                STATE.entrypoints[path] = rid
                ruleset = STATE.rulesets.setdefault(rid, {"id": rid, "phase": m.group(3), "kind": "root", "rules": []})
                ruleset["rules"] = [{**r, "id": r.get("id") or STATE.next_id("r")} for r in body["rules"]]
                return ruleset

            return _create(h, make)
    if (m := RULES.match(path)) and h.command == "POST":
        ruleset = STATE.rulesets.get(m.group(3))
        if ruleset is None:
            STATE.seen[-1][2] = 404
            return _send(h, 404, None)

        def add() -> dict:
            ruleset["rules"].append({**body, "id": STATE.next_id("r")})
            return ruleset

        return _create(h, add)
    if (m := RULE.match(path)) and h.command == "DELETE":
        ruleset = STATE.rulesets.get(m.group(3))
        if ruleset is None or not any(r["id"] == m.group(4) for r in ruleset["rules"]):
            STATE.seen[-1][2] = 404
            return _send(h, 404, None)
        with STATE.lock:
            ruleset["rules"] = [r for r in ruleset["rules"] if r["id"] != m.group(4)]
        STATE.seen[-1][2] = 200
        return _send(h, 200, ruleset)
    if (m := RULESET.match(path)) and h.command == "GET":
        ruleset = STATE.rulesets.get(m.group(3))
        STATE.seen[-1][2] = 200 if ruleset else 404
        return _send(h, 200 if ruleset else 404, ruleset)
    STATE.seen[-1][2] = 404
    return _send(h, 404, None)


class Handler(BaseHTTPRequestHandler):
    def do_GET(self) -> None:  # noqa: N802
        handle(self)

    do_POST = do_PUT = do_DELETE = do_PATCH = do_GET  # noqa: N815

    def log_message(self, *args: Any) -> None:
        pass


if __name__ == "__main__":
    server = ThreadingHTTPServer(("127.0.0.1", int(sys.argv[1])), Handler)
    print("ready", flush=True)
    server.serve_forever()
