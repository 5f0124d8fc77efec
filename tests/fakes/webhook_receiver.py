"""A webhook receiver on loopback: a real HTTP server in a thread that records what it gets
(the `receiver` fixture, via tests/fakes/fixtures.py), for alert and billing webhooks."""

import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest


@dataclass
class Receiver:
    """Answers each POST with the next of `statuses` (the last one again when they run
    out), after `delay` seconds; keeps every request as (headers, body), and the paths
    they were POSTed to."""

    url: str = ""
    statuses: list[int] = field(default_factory=lambda: [200])
    delay: float = 0.0
    requests: list[tuple[dict, bytes]] = field(default_factory=list)
    paths: list[str] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def answer(self, path: str, headers: dict, body: bytes) -> int:
        with self.lock:
            self.requests.append((headers, body))
            self.paths.append(path)
            return self.statuses[min(len(self.requests), len(self.statuses)) - 1]


@pytest.fixture
def receiver():
    state = Receiver()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self):
            body = self.rfile.read(int(self.headers["Content-Length"]))
            status = state.answer(self.path, dict(self.headers), body)
            time.sleep(state.delay)
            self.send_response(status)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    state.url = f"http://127.0.0.1:{server.server_port}/hooks/tokentill"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield state
    server.shutdown()
    server.server_close()
