"""A proxy on loopback in front of the live tokentill, which breaks the requests it is
told to: the client's retries are tested against the real server, over real sockets.

Each request takes the next of `faults` (none once they run out):

- ``"500"``, ``"413"``: answered with that status, not forwarded;
- ``"429"``: answered 429 with ``Retry-After: <retry_after>``, not forwarded;
- ``"drop"``: the connection is closed with no answer, not forwarded;
- ``"lost"``: forwarded (tokentill stores it), then no answer until the client's
  timeout has passed: the answer is lost on the way back.
"""

import http.client
import json
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import urlsplit


@dataclass
class Seen:
    """A request as the proxy saw it, and what it did with it."""

    path: str
    body: bytes
    fault: str | None
    at: float  # time.monotonic() when it arrived
    status: int | None = None  # what the client was answered, if anything

    @property
    def events(self) -> list[dict]:
        data = json.loads(self.body)
        return data.get("events", [data])


@dataclass
class Proxy:
    target: str
    faults: list[str] = field(default_factory=list)
    retry_after: str = "1"
    hang: float = 1.0  # how long a "lost" answer keeps the client waiting
    seen: list[Seen] = field(default_factory=list)
    url: str = ""
    lock: threading.Lock = field(default_factory=threading.Lock)

    def posts(self) -> list[Seen]:
        return [request for request in self.seen if request.path == "/api/v1/events"]

    def batch_sizes(self) -> list[int]:
        return [len(request.events) for request in self.posts()]

    def _next(self, path: str, body: bytes) -> Seen:
        with self.lock:
            fault = self.faults.pop(0) if self.faults else None
            seen = Seen(path, body, fault, time.monotonic())
            self.seen.append(seen)
            return seen

    def forward(self, method: str, path: str, headers: dict, body: bytes):
        target = urlsplit(self.target)
        connection = http.client.HTTPConnection(target.hostname, target.port, timeout=30)
        try:
            connection.request(method, path, body=body, headers=headers)
            response = connection.getresponse()
            return response.status, response.getheaders(), response.read()
        finally:
            connection.close()


def proxy_start(target: str) -> tuple[Proxy, ThreadingHTTPServer]:
    state = Proxy(target)

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def _handle(self):
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length)
            seen = state._next(self.path, body)
            if seen.fault in ("500", "413", "429"):
                headers = {"Retry-After": state.retry_after} if seen.fault == "429" else {}
                return self._answer(seen, int(seen.fault), headers.items(), b'{"detail": "x"}')
            if seen.fault == "drop":
                self.close_connection = True
                return None
            headers = {k: v for k, v in self.headers.items() if k.lower() != "host"}
            status, answer_headers, answer = state.forward(self.command, self.path, headers, body)
            if seen.fault == "lost":
                time.sleep(state.hang)
                self.close_connection = True
                return None
            kept = [(k, v) for k, v in answer_headers if k.lower() in ("content-type",)]
            return self._answer(seen, status, kept, answer)

        def _answer(self, seen: Seen, status: int, headers, body: bytes):
            seen.status = status
            self.send_response(status)
            for name, value in headers:
                self.send_header(name, value)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        do_GET = do_POST = _handle

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    state.url = f"http://127.0.0.1:{server.server_port}"
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return state, server
