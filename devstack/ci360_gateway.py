"""A fake CI360 external gateway on 127.0.0.1, for the tests and the demo: it checks each event the way
CONTRACT.md describes CI360's (``POST /marketingGateway/events``, ``Authorization: Bearer <JWT>``, HS256
over ``{"clientID": <tenant id>}`` keyed with the client secret base64-encoded, a JSON body with
``eventName``) and records what it received.

The token is verified with joserfc, a JWT library independent of the one the connector signs with
(PyJWT), so a mistake in how the connector builds the key or the claims cannot be mirrored here.

Faults, as a real gateway can show them: ``hang`` (accepts the request, never answers), ``fail_first=N``
(answers 500 to the first N requests, then as usual), ``refuse`` (401 to everything). A thread of the
calling process; every wait in it ends when the gateway stops.
"""

from __future__ import annotations

import base64
import json
import threading
import uuid
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from joserfc import jwt
from joserfc.errors import JoseError
from joserfc.jwk import OctKey

EVENTS_PATH = "/marketingGateway/events"
HANG_LIMIT_S = 120.0  # a hanging request is let go after this, or when the gateway stops


@dataclass
class Request:
    """One request as the gateway saw it: what it answered, why, and (verified) the event."""

    status: int
    reason: str
    path: str
    claims: dict[str, Any] | None = None
    header: dict[str, Any] | None = None
    event: dict[str, Any] | None = None


@dataclass
class FakeCI360Gateway:
    tenant_id: str
    client_secret: str = field(repr=False)
    mode: str = "ok"  # ok, hang, refuse
    fail_first: int = 0  # answer 500 to this many requests first
    requests: list[Request] = field(default_factory=list)

    def __post_init__(self) -> None:
        self._key = OctKey.import_key(base64.b64encode(self.client_secret.encode("utf-8")))
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(self))
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, name="fake-ci360", daemon=True)
        self._thread.start()

    @property
    def url(self) -> str:
        """The "external gateway address" (what the access point shows)."""
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    @property
    def events_url(self) -> str:
        return self.url + EVENTS_PATH

    @property
    def received(self) -> list[dict[str, Any]]:
        """The events it accepted (verified token, well-formed body), in order."""
        return [r.event for r in self.requests if r.status == 201 and r.event is not None]

    def stop(self) -> None:
        self._stopping.set()
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(5)

    def __enter__(self) -> FakeCI360Gateway:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- what a request gets -------------------------------------------------------------------------

    def answer(self, method: str, path: str, headers: Any, body: bytes) -> tuple[int, Request | None]:
        with self._lock:
            failing = self.fail_first > 0
            if failing:
                self.fail_first -= 1
        if self.mode == "hang":
            self._record(Request(0, "hung", path))
            self._stopping.wait(HANG_LIMIT_S)
            return 0, None
        if failing:
            return 500, self._record(Request(500, "fault: 500", path))
        if self.mode == "refuse":
            return 401, self._record(Request(401, "fault: 401", path))
        if method != "POST" or path != EVENTS_PATH:
            return 404, self._record(Request(404, f"no such resource: {method} {path}", path))
        if not headers.get("Content-Type", "").startswith("application/json"):
            return 415, self._record(Request(415, "not application/json", path))
        scheme, _, token = headers.get("Authorization", "").partition(" ")
        if scheme != "Bearer" or not token:
            return 401, self._record(Request(401, "no bearer token", path))
        try:
            verified = jwt.decode(token, self._key, algorithms=["HS256"])
        except (JoseError, ValueError) as exc:
            return 401, self._record(Request(401, f"token refused: {type(exc).__name__}", path))
        if verified.header.get("alg") != "HS256" or verified.claims != {"clientID": self.tenant_id}:
            return 401, self._record(Request(401, "wrong claims or algorithm", path, dict(verified.claims),
                                             dict(verified.header)))
        try:
            event = json.loads(body)
        except ValueError:
            event = None
        if not isinstance(event, dict) or not isinstance(event.get("eventName"), str):
            return 400, self._record(Request(400, "body is not an event", path))
        return 201, self._record(Request(201, "accepted", path, dict(verified.claims), dict(verified.header),
                                         event))

    def _record(self, request: Request) -> Request:
        with self._lock:
            self.requests.append(request)
        return request


def _handler(gateway: FakeCI360Gateway) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_POST(self) -> None:  # noqa: N802 (http.server's name)
            self._serve("POST")

        def do_GET(self) -> None:  # noqa: N802
            self._serve("GET")

        def _serve(self, method: str) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(min(length, 1 << 20)) if length else b""
            status, _ = gateway.answer(method, self.path, self.headers, body)
            if status == 0:  # hung: let go without an answer
                self.close_connection = True
                return
            payload = json.dumps({"id": str(uuid.uuid4())} if status == 201 else
                                 {"error": {"status": status}}).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

        def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 (http.server's name)
            return  # quiet: a test reads ``requests`` instead

    return Handler
