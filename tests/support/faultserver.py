"""A misbehaving HTTP origin on 127.0.0.1, for the failures moto's server will not produce.

Each path is scripted: an S3-style refusal, a body cut short, silence, a trickle, or an object that is
cut mid-body and then served by Range requests (pinned by If-Match, as S3 does), possibly changing.

Like S3, it keeps connections alive between answers (a trickle included: S3 never says
``Connection: close`` on a slow answer), and answers a connection's requests in order: a request sent
on a connection whose previous answer is still coming waits behind it, as it would on S3. So a client
that reuses a connection it abandoned mid-body hangs here as it would there.

What tests count is observed from this side of the connection, never inferred from a pause:

- ``active`` / ``max_active``: the client's connections open right now (from accepting one until the
  client closes it; after an answer with ``Connection: close`` the server shuts its own side for
  writing and still waits for the client's close), and the most at once.
- ``held`` / ``max_held`` with ``Script.hold``: answers whose body waits at a gate the test releases
  (``release``); the count drops in the releasing thread, before a byte of the body is sent.
- ``answers``: every answer begun, with whether its body was sent whole and whether the client left
  (closed its connection) before it was.
"""

from __future__ import annotations

import re
import select
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

EXPIRED_XML = (b'<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>AccessDenied</Code>'
               b"<Message>Request has expired</Message><X-Amz-Expires>3600</X-Amz-Expires></Error>")
PRECONDITION_XML = b"<Error><Code>PreconditionFailed</Code></Error>"
_CLIENT_CLOSE_WAIT_S = 60.0  # after a Connection: close answer, how long the client's close is awaited


@dataclass
class Script:
    status: int = 200
    body: bytes = b""
    promised_length: int | None = None  # a Content-Length larger than the body: the connection drops
    delay: float = 0.0  # seconds of silence before answering
    etag: str | None = None  # set: the object has an ETag and honours Range + If-Match
    cuts: list[int] = field(default_factory=list)  # each response in turn drops after this many bytes
    etag_after_first: str | None = None  # the object is replaced after the first response
    headers: dict[str, str] = field(default_factory=dict)  # extra (or replacing) response headers
    trickle: tuple[int, float] | None = None  # (bytes, seconds): send each body this many at a time
    ranges: bool = True  # False: Range is ignored (the whole body, 200), as some servers do
    range_cuts: dict[int, list[int]] = field(default_factory=dict)  # by range start: each answer drops
    expire_after: int | None = None  # answers after this many are 403 AccessDenied (the URL expired)
    # Each 200/206 body (True), or those of the ranges starting at these bytes, waits after its headers
    # until the test releases it (FaultServer.release) or the client leaves.
    hold: bool | frozenset[int] = False
    refusal_trickle: tuple[int, float] | None = None  # as trickle, for an object's 403 and 412 bodies


@dataclass
class Answer:
    """One answer the server began."""

    path: str
    range: str | None  # the request's Range header
    status: int
    complete: bool = False  # every byte of the body was written
    client_left: bool = False  # the client closed its connection before the body was written whole


class FaultServer:
    def __init__(self) -> None:
        self.scripts: dict[str, Script] = {}
        self.requests: list[tuple[str, dict[str, str]]] = []
        self.answers: list[Answer] = []
        self.stopped = threading.Event()
        self.active = 0  # the client's connections open right now
        self.max_active = 0
        self.held = 0  # bodies waiting at their gate right now (Script.hold)
        self.max_held = 0
        self._gates: dict[int, threading.Event] = {}  # by range start (0 for a whole GET)
        self._gates_open = False
        self._lock = threading.RLock()
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def handle(self) -> None:
                with server._lock:
                    server.active += 1
                    server.max_active = max(server.max_active, server.active)
                try:
                    super().handle()  # every request on this connection, until either side closes it
                    self._await_client_close()
                finally:
                    with server._lock:
                        server.active -= 1

            def do_GET(self) -> None:  # noqa: N802 (http.server's naming)
                path = self.path.split("?", 1)[0]
                headers = {k.lower(): v for k, v in self.headers.items()}
                with server._lock:
                    server.requests.append((path, headers))
                    nth = len([r for r in server.requests if r[0] == path])
                self._path, self._range = path, headers.get("range")
                script = server.scripts.get(path, Script(404, b"<Error><Code>NoSuchKey</Code></Error>"))
                if script.delay:
                    server.stopped.wait(script.delay)
                if script.etag is not None:
                    self._object(script, headers, nth)
                    return
                length = script.promised_length if script.promised_length is not None else len(script.body)
                self._send(script.status, script.body, {"Content-Length": str(length), **script.headers},
                           cut=script.promised_length is not None, trickle=script.trickle,
                           gate=0 if _holds(script, 0) and script.status == 200 else None)

            def _object(self, script: Script, headers: dict[str, str], nth: int) -> None:
                etag = script.etag if nth == 1 or not script.etag_after_first else script.etag_after_first
                if script.expire_after is not None and nth > script.expire_after:
                    self._send(403, EXPIRED_XML, {"Content-Length": str(len(EXPIRED_XML))},
                               trickle=script.refusal_trickle)
                    return
                if "if-match" in headers and headers["if-match"] != etag:
                    self._send(412, PRECONDITION_XML, {"Content-Length": str(len(PRECONDITION_XML))},
                               trickle=script.refusal_trickle)
                    return
                body, status, extra, start = script.body, 200, {}, 0
                match = re.fullmatch(r"bytes=(\d+)-(\d*)", headers.get("range", ""))
                cut = script.cuts[nth - 1] if nth <= len(script.cuts) else None
                if match and script.ranges:
                    start = int(match.group(1))
                    if start >= len(script.body):
                        self._send(416, b"<Error><Code>InvalidRange</Code></Error>", {"Content-Length": "40"})
                        return
                    end = min(int(match.group(2) or len(script.body) - 1), len(script.body) - 1)
                    body, status = script.body[start:end + 1], 206
                    extra["Content-Range"] = f"bytes {start}-{end}/{len(script.body)}"
                    if script.range_cuts.get(start):
                        cut = script.range_cuts[start].pop(0)
                self._send(status, body if cut is None else body[:cut],
                           {"Content-Length": str(len(body)), "ETag": etag, **extra, **script.headers},
                           cut=cut is not None, trickle=script.trickle,
                           gate=start if _holds(script, start) else None)

            def _send(self, status: int, body: bytes, headers: dict[str, str], cut: bool = False,
                      trickle: tuple[int, float] | None = None, gate: int | None = None) -> None:
                answer = Answer(getattr(self, "_path", self.path), getattr(self, "_range", None), status)
                with server._lock:
                    server.answers.append(answer)
                self.send_response(status)
                for name, value in headers.items():
                    self.send_header(name, value)
                if cut:
                    self.send_header("Connection", "close")
                try:
                    self.end_headers()
                    if gate is not None and not server._hold(gate, self):
                        answer.client_left = not server.stopped.is_set()
                    elif trickle is None:
                        self.wfile.write(body)
                        self.wfile.flush()
                        answer.complete = True
                    else:  # a slow or stalling origin: a few bytes, then a pause, until the client leaves
                        step, pause = trickle
                        for start in range(0, len(body), step):
                            self.wfile.write(body[start:start + step])
                            self.wfile.flush()
                            if start + step < len(body) and self._client_left(pause):
                                answer.client_left = not server.stopped.is_set()
                                break
                        else:
                            answer.complete = True
                except (BrokenPipeError, ConnectionResetError):
                    answer.client_left = True
                if cut or answer.client_left or not answer.complete:
                    self.close_connection = True

            def _client_left(self, seconds: float) -> bool:
                """Pause; True as soon as the client closes its end (or the server stops) meanwhile. A
                request the client sends meanwhile on this connection waits, as it would on S3."""
                ends = time.monotonic() + seconds
                while (left := ends - time.monotonic()) > 0:
                    if server.stopped.is_set():
                        return True
                    state = _peer_state(self.connection, min(left, 0.05))
                    if state == "closed":
                        return True
                    if state == "data":  # the next request, on a connection still busy with this answer
                        return server.stopped.wait(max(ends - time.monotonic(), 0))
                return server.stopped.is_set()

            def _await_client_close(self) -> None:
                """The server ended the connection (Connection: close, a cut, a stop): say so to the
                client (FIN), then wait for the client to close its end, so ``active`` counts it open
                until then."""
                try:
                    self.connection.shutdown(socket.SHUT_WR)
                except OSError:
                    return
                ends = time.monotonic() + _CLIENT_CLOSE_WAIT_S
                while not server.stopped.is_set() and time.monotonic() < ends:
                    try:
                        readable, _, _ = select.select([self.connection], [], [], 0.05)
                        if readable and not self.connection.recv(65536):
                            return
                    except OSError:
                        return

            def log_message(self, *args: Any) -> None:
                pass

        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._httpd.daemon_threads = True
        self._thread = threading.Thread(target=self._httpd.serve_forever, daemon=True)
        self._thread.start()

    def url(self, path: str, script: Script) -> str:
        """A URL shaped like a presigned one, signature and token included, that plays ``script``."""
        self.scripts[path] = script
        host, port = self._httpd.server_address[:2]
        return (f"http://{host}:{port}{path}?X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=AKIA%2F"
                f"&X-Amz-Security-Token=SECRETTOKEN&X-Amz-Signature=deadbeefsignature")

    def requests_for(self, path: str) -> list[dict[str, str]]:
        with self._lock:
            return [headers for p, headers in self.requests if p == path]

    def answers_for(self, path: str) -> list[Answer]:
        with self._lock:
            return [answer for answer in self.answers if answer.path == path]

    # -- gates (Script.hold) ------------------------------------------------------------------------
    def held_ranges(self) -> list[int]:
        """The starts of the ranges whose body waits at its gate right now, in order."""
        with self._lock:
            return sorted(self._gates)

    def release(self, *starts: int) -> None:
        """Let these ranges' bodies go (their count leaves ``held`` here, before a byte is sent)."""
        with self._lock:
            for start in starts:
                gate = self._gates.pop(start, None)  # None: its client left meanwhile
                if gate is not None:
                    self.held -= 1
                    gate.set()

    def release_all(self) -> None:
        """Let every held body go, and every later one pass its gate at once."""
        with self._lock:
            self._gates_open = True
            self.release(*list(self._gates))

    def _hold(self, start: int, handler: BaseHTTPRequestHandler) -> bool:
        """Wait at range ``start``'s gate; False if the client left (or the server stopped) first."""
        with self._lock:
            if self._gates_open:
                return True
            assert start not in self._gates, f"range {start} is held twice"
            gate = self._gates[start] = threading.Event()
            self.held += 1
            self.max_held = max(self.max_held, self.held)
        while not gate.wait(0.02):
            if self.stopped.is_set() or _peer_state(handler.connection, 0) == "closed":
                with self._lock:
                    if self._gates.get(start) is gate:
                        del self._gates[start]
                        self.held -= 1
                return False
        return True

    # -- waiting on what the server sees ------------------------------------------------------------
    def wait_for(self, predicate: Callable[[], bool], what: str, timeout: float = 10.0) -> None:
        """Wait at most ``timeout`` seconds for ``predicate()`` (checked under the server's lock, so
        its counts are consistent), failing the test with ``what`` if it never holds."""
        ends = time.monotonic() + timeout
        while True:
            with self._lock:
                if predicate():
                    return
            if time.monotonic() > ends:
                raise AssertionError(f"not within {timeout} s: {what}")
            time.sleep(0.01)

    def stop(self) -> None:
        self.stopped.set()
        self._httpd.shutdown()
        self._httpd.server_close()


def _holds(script: Script, start: int) -> bool:
    return script.hold is True or (isinstance(script.hold, frozenset) and start in script.hold)


def _peer_state(sock: socket.socket, wait: float) -> str:
    """"closed" if the client has closed its end, "data" if it sent more, "quiet" otherwise (after
    waiting up to ``wait`` seconds for either)."""
    try:
        readable, _, _ = select.select([sock], [], [], wait)
        if not readable:
            return "quiet"
        return "data" if sock.recv(1, socket.MSG_PEEK) else "closed"
    except OSError:
        return "closed"
