"""A tiny HTTP server on 127.0.0.1 for tests that must not touch the internet.

Usage in a test module::

    from tests.helpers.httpfixtures import FakeClock, Reply, http_server  # noqa: F401  (fixture import)

    def test_x(http_server):
        http_server.file("/f.bin", b"data")                 # static file, honours Range
        http_server.json("/api/item/1", {"overview": "…"})  # JSON answer
        http_server.sequence("/api/x", [Reply(429, headers={"Retry-After": "2"}), Reply(200, b"{}")])
        url = http_server.url("/f.bin")
        ...
        assert http_server.count("/api/") == 2              # requests seen under a prefix

Safety: binds only 127.0.0.1 on a free port; every connection has a socket timeout; a
watchdog shuts the server down after ``max_lifetime_s`` even if a test hangs; the fixture
stops it at teardown.
"""

from __future__ import annotations

import json
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Callable
from urllib.parse import unquote, urlsplit

import pytest


@dataclass
class Reply:
    """One canned response.

    Attributes:
        status: HTTP status.
        body: bytes sent.
        headers: extra headers.
        cut_after: send the full ``Content-Length`` but only this many body bytes, then drop
            the connection (a transfer interrupted mid-way).
    """

    status: int = 200
    body: bytes = b""
    headers: dict = field(default_factory=dict)
    cut_after: int | None = None


@dataclass(frozen=True)
class Seen:
    """A request the server received: path and query unquoted, headers as a dict."""

    method: str
    path: str
    query: str
    headers: dict

    @property
    def target(self) -> str:
        return self.path + ("?" + self.query if self.query else "")


class _File:
    """A static file with Range support; ``cut_first`` interrupts the first N transfers."""

    def __init__(self, data: bytes, cut_first: list[int], ignore_range: bool):
        self.data, self.cut_first, self.ignore_range = data, list(cut_first), ignore_range
        self.lock = threading.Lock()

    def __call__(self, req: Seen) -> Reply:
        data, n = self.data, len(self.data)
        rng = req.headers.get("Range")
        with self.lock:
            cut = self.cut_first.pop(0) if self.cut_first else None
        if rng and not self.ignore_range:
            start = int(rng.split("=")[1].split("-")[0])
            if start >= n:
                return Reply(416, b"", {"Content-Range": f"bytes */{n}"})
            body = data[start:]
            return Reply(206, body, {"Content-Range": f"bytes {start}-{n - 1}/{n}", "Accept-Ranges": "bytes"}, cut)
        return Reply(200, data, {"Accept-Ranges": "bytes"}, cut)


class FakeServer:
    """Routes ``path`` (or ``path?query``) → a :class:`Reply`, a list of them, or a callable."""

    def __init__(self, max_lifetime_s: float = 120.0):
        self.routes: dict[str, object] = {}
        self.seen: list[Seen] = []
        self._lock = threading.Lock()
        server = self

        class Handler(BaseHTTPRequestHandler):
            timeout = 10  # seconds per connection: a stuck client cannot hold a thread forever

            def log_message(self, *args):  # keep pytest output clean
                pass

            def do_GET(self):
                parts = urlsplit(self.path)
                req = Seen("GET", unquote(parts.path), unquote(parts.query), dict(self.headers.items()))
                with server._lock:
                    server.seen.append(req)
                reply = server._resolve(req)
                self.send_response(reply.status)
                headers = {"Content-Type": "application/octet-stream", **reply.headers}
                for k, v in headers.items():
                    self.send_header(k, str(v))
                self.send_header("Content-Length", str(len(reply.body)))
                self.send_header("Connection", "close")
                self.end_headers()
                body = reply.body if reply.cut_after is None else reply.body[: reply.cut_after]
                try:
                    self.wfile.write(body)
                    self.wfile.flush()
                except (BrokenPipeError, ConnectionResetError):
                    pass
                self.close_connection = True

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.thread = threading.Thread(target=self.httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        self.watchdog = threading.Timer(max_lifetime_s, self.stop)
        self.watchdog.daemon = True
        self._stopped = False

    # lifecycle -----------------------------------------------------------------------------
    def start(self) -> "FakeServer":
        self.thread.start()
        self.watchdog.start()
        return self

    def stop(self) -> None:
        with self._lock:
            if self._stopped:
                return
            self._stopped = True
        self.watchdog.cancel()
        self.httpd.shutdown()
        self.httpd.server_close()

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()

    # routes ----------------------------------------------------------------------------------
    @property
    def host(self) -> str:
        return "%s:%d" % self.httpd.server_address[:2]

    def url(self, path: str = "/") -> str:
        return f"http://{self.host}{path}"

    def file(self, path: str, data: bytes, *, cut_first: list[int] | tuple = (), ignore_range: bool = False) -> None:
        """Serve ``data`` at ``path`` with Range support; the first ``len(cut_first)`` transfers
        are cut after the given byte counts."""
        self.routes[path] = _File(data, list(cut_first), ignore_range)

    def json(self, path: str, obj, status: int = 200, headers: dict | None = None) -> None:
        body = json.dumps(obj).encode("utf-8")
        self.routes[path] = Reply(status, body, {"Content-Type": "application/json", **(headers or {})})

    def raw(self, path: str, body: bytes, status: int = 200, headers: dict | None = None) -> None:
        self.routes[path] = Reply(status, body, dict(headers or {}))

    def sequence(self, path: str, replies: list[Reply]) -> None:
        """Answer successive requests with ``replies`` in order; the last one repeats."""
        self.routes[path] = list(replies)

    def handler(self, path: str, fn: Callable[[Seen], Reply]) -> None:
        self.routes[path] = fn

    def _resolve(self, req: Seen) -> Reply:
        with self._lock:
            route = self.routes.get(req.target, self.routes.get(req.path))
            if isinstance(route, list):
                route = route.pop(0) if len(route) > 1 else route[0]
        if route is None:
            return Reply(404, b'{"error": "no such route"}', {"Content-Type": "application/json"})
        return route(req) if callable(route) else route

    # inspection ------------------------------------------------------------------------------
    def count(self, prefix: str = "") -> int:
        """Number of requests whose path starts with ``prefix``."""
        with self._lock:
            return sum(1 for s in self.seen if s.path.startswith(prefix))

    def requests(self, prefix: str = "") -> list[Seen]:
        with self._lock:
            return [s for s in self.seen if s.path.startswith(prefix)]


class FakeClock:
    """Monotonic clock + sleep that only advance on ``sleep``: rate limits and back-off run instantly.

    ``sleeps`` records every requested sleep (seconds); ``now()`` is a Unix time for
    ``Retry-After`` dates.
    """

    EPOCH = 1_700_000_000.0

    def __init__(self):
        self.t = 0.0
        self.sleeps: list[float] = []
        self._lock = threading.Lock()

    def monotonic(self) -> float:
        return self.t

    def now(self) -> float:
        return self.EPOCH + self.t

    def sleep(self, seconds: float) -> None:
        with self._lock:
            self.sleeps.append(seconds)
            self.t += seconds


@pytest.fixture
def http_server(monkeypatch):
    """A started :class:`FakeServer`; proxies bypassed for 127.0.0.1; stopped at teardown."""
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")
    monkeypatch.setenv("no_proxy", "127.0.0.1,localhost")
    for var in ("HTTP_PROXY", "http_proxy", "HTTPS_PROXY", "https_proxy", "ALL_PROXY", "all_proxy"):
        monkeypatch.delenv(var, raising=False)
    server = FakeServer().start()
    try:
        yield server
    finally:
        server.stop()
