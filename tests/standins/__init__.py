"""Local stand-ins for SMS gateways: real HTTP servers on 127.0.0.1 that speak each protocol.

Each stand-in is a stdlib :class:`~http.server.ThreadingHTTPServer` on an ephemeral port,
run in a thread. It records every request it receives (:attr:`StandinServer.requests`) so
a test can count what really arrived, and answers according to a per-number script (see
:mod:`standins.textanywhere` and :mod:`standins.twilio`). :class:`ProxyStandin` is a tiny
forwarding HTTP proxy that records the absolute-form requests it is given and only ever
forwards to 127.0.0.1.

Under pytest, ``tests/`` is on ``sys.path`` (as for ``from conftest import …``), so this
package is ``standins``, not ``tests.standins``. Either use the context managers in a
fixture of your own::

    from standins.textanywhere import TextAnywhereStandin

    @pytest.fixture
    def textanywhere_server():
        with TextAnywhereStandin() as server:
            yield server

or take the ready-made fixtures below with ``pytest_plugins = ["standins"]`` in a test
module (import nothing else from ``standins`` before that line is read, or pytest warns
that it cannot rewrite its asserts).
"""

from __future__ import annotations

import http.client
import json
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import TYPE_CHECKING, Any, Self
from urllib.parse import parse_qs, urlsplit

import pytest

if TYPE_CHECKING:
    from .textanywhere import TextAnywhereStandin
    from .twilio import TwilioStandin

LOCAL_HOSTS = {"127.0.0.1", "localhost"}


@dataclass
class Recorded:
    """One request as the stand-in received it."""

    method: str
    target: str  # the raw request-target: a path, or an absolute URL when proxied
    path: str
    query: dict[str, str]
    headers: dict[str, str]  # names in lower case
    body: bytes
    form: dict[str, str]  # the form-encoded body (or query), one value per name
    form_lists: dict[str, list[str]] = field(default_factory=dict)


@dataclass
class Reply:
    """What the stand-in answers; ``delay`` seconds pass before it does."""

    status: int = 200
    body: str | bytes = ""
    headers: dict[str, str] = field(default_factory=dict)
    delay: float = 0.0

    @classmethod
    def json(cls, status: int, data: Any, **headers: str) -> Reply:
        """A JSON answer."""
        return cls(status, json.dumps(data), {"Content-Type": "application/json", **headers})

    @classmethod
    def text(cls, body: str, status: int = 200, **headers: str) -> Reply:
        """A plain-text answer."""
        return cls(status, body, {"Content-Type": "text/plain; charset=utf-8", **headers})


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "Standin/1.0"
    # Headers and body go out as two small writes: without this, Nagle adds ~40 ms each.
    disable_nagle_algorithm = True
    server: _Server

    def do_GET(self) -> None:  # noqa: N802 - the stdlib's naming
        self._serve()

    def do_POST(self) -> None:  # noqa: N802
        self._serve()

    def do_CONNECT(self) -> None:  # noqa: N802
        self._serve()

    def log_message(self, format: str, *args: Any) -> None:  # keep test output quiet
        pass

    def _serve(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        parts = urlsplit(self.path)
        query = {k: v[-1] for k, v in parse_qs(parts.query, keep_blank_values=True).items()}
        form_lists: dict[str, list[str]] = {}
        if "form-urlencoded" in (self.headers.get("Content-Type") or ""):
            form_lists = parse_qs(body.decode("utf-8"), keep_blank_values=True)
        rec = Recorded(
            method=self.command,
            target=self.path,
            path=parts.path,
            query=query,
            headers={k.lower(): v for k, v in self.headers.items()},
            body=body,
            form={k: v[-1] for k, v in form_lists.items()} or dict(query),
            form_lists=form_lists,
        )
        standin = self.server.standin
        standin.record(rec)
        reply = standin.handle(rec)
        if reply.delay:
            standin.sleep(reply.delay)
        payload = reply.body.encode("utf-8") if isinstance(reply.body, str) else reply.body
        try:
            self.send_response(reply.status)
            for name, value in reply.headers.items():
                self.send_header(name, value)
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)
        except (BrokenPipeError, ConnectionResetError):  # the client gave up (timeout test)
            self.close_connection = True


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    standin: StandinServer


class StandinServer:
    """Base class: a recording HTTP server on 127.0.0.1; subclasses implement :meth:`handle`."""

    def __init__(self) -> None:
        self.requests: list[Recorded] = []
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._httpd = _Server(("127.0.0.1", 0), _Handler)
        self._httpd.standin = self
        self._thread = threading.Thread(
            target=self._httpd.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True
        )

    @property
    def url(self) -> str:
        """``http://127.0.0.1:<port>`` (no trailing slash)."""
        host, port = self._httpd.server_address[:2]
        return f"http://{host}:{port}"

    def start(self) -> Self:
        """Start serving in a background thread."""
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving; slow answers still sleeping are woken and dropped."""
        self._stopping.set()
        self._httpd.shutdown()
        self._httpd.server_close()

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def record(self, rec: Recorded) -> None:
        """Keep ``rec`` (thread-safe)."""
        with self._lock:
            self.requests.append(rec)

    def sleep(self, seconds: float) -> None:
        """Wait ``seconds``, or less if the server is stopping."""
        self._stopping.wait(seconds)

    def handle(self, rec: Recorded) -> Reply:  # pragma: no cover - abstract
        """The answer to ``rec``."""
        raise NotImplementedError


class ProxyStandin(StandinServer):
    """A forwarding HTTP proxy for absolute-form requests to 127.0.0.1 only.

    CONNECT (HTTPS tunnelling) is recorded and refused; the gateways' stand-ins speak
    plain HTTP, so a proxied request to them arrives here in absolute form.
    """

    HOP_BY_HOP = {"connection", "keep-alive", "proxy-authorization", "proxy-connection", "te"}

    def handle(self, rec: Recorded) -> Reply:
        """Forward ``rec`` to its (local) origin and relay the answer."""
        if rec.method == "CONNECT":
            return Reply.text("tunnelling not supported by this stand-in", 405)
        parts = urlsplit(rec.target)
        if parts.scheme != "http" or parts.hostname not in LOCAL_HOSTS:
            return Reply.text(f"refusing to forward to {parts.hostname!r}", 403)
        headers = {k: v for k, v in rec.headers.items() if k not in self.HOP_BY_HOP}
        path = parts.path + (f"?{parts.query}" if parts.query else "")
        conn = http.client.HTTPConnection(parts.hostname, parts.port or 80, timeout=10)
        try:
            conn.request(rec.method, path, body=rec.body or None, headers=headers)
            answer = conn.getresponse()
            body = answer.read()
            keep = {"content-type", "retry-after"}
            relayed = {k: v for k, v in answer.getheaders() if k.lower() in keep}
            return Reply(answer.status, body, relayed)
        except OSError as exc:
            return Reply.text(f"proxy could not reach origin: {exc}", 502)
        finally:
            conn.close()


@pytest.fixture
def textanywhere_server() -> Iterator[TextAnywhereStandin]:
    """A started Text Anywhere stand-in (see :mod:`standins.textanywhere`)."""
    from .textanywhere import TextAnywhereStandin

    with TextAnywhereStandin() as server:
        yield server


@pytest.fixture
def twilio_server() -> Iterator[TwilioStandin]:
    """A started Twilio stand-in (see :mod:`standins.twilio`)."""
    from .twilio import TwilioStandin

    with TwilioStandin() as server:
        yield server


@pytest.fixture
def proxy_server() -> Iterator[ProxyStandin]:
    """A started forwarding proxy that records what it was asked to fetch."""
    with ProxyStandin() as server:
        yield server
