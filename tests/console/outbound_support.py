"""A stand-in HTTP server that records every request it is sent (a hit is what SSRF tests count)."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


@dataclass
class Hit:
    method: str
    path: str
    headers: dict[str, str]


@dataclass
class Listener:
    """Answers every request with ``status``, ``headers`` and ``body``; ``hits`` says who came."""

    host: str
    port: int = 0
    status: int = 200
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes = b""
    hits: list[Hit] = field(default_factory=list)

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"


@contextmanager
def listening(listener: Listener, server_class: type[ThreadingHTTPServer] = ThreadingHTTPServer) -> Iterator[Listener]:
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            if length:
                self.rfile.read(length)
            listener.hits.append(Hit(self.command, self.path, dict(self.headers)))
            self.send_response(listener.status)
            for key, value in listener.headers.items():
                self.send_header(key, value)
            self.send_header("Content-Length", str(len(listener.body)))
            self.end_headers()
            self.wfile.write(listener.body)

        do_POST = do_GET

        def log_message(self, *args: object) -> None:
            pass

    server = server_class((listener.host, listener.port), Handler)
    listener.port = server.server_address[1]
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield listener
    finally:
        server.shutdown()
        server.server_close()
