"""A misbehaving HTTP origin on 127.0.0.1, for the failures moto's server will not produce.

Each path is scripted: an S3-style refusal, a body cut short, silence, or an object that is cut
mid-body and then served by Range requests (pinned by If-Match, as S3 does), possibly changing.
"""

from __future__ import annotations

import re
import select
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

EXPIRED_XML = (b'<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>AccessDenied</Code>'
               b"<Message>Request has expired</Message><X-Amz-Expires>3600</X-Amz-Expires></Error>")
PRECONDITION_XML = b"<Error><Code>PreconditionFailed</Code></Error>"


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


class FaultServer:
    def __init__(self) -> None:
        self.scripts: dict[str, Script] = {}
        self.requests: list[tuple[str, dict[str, str]]] = []
        self.stopped = threading.Event()
        self.active = 0  # requests being answered right now
        self.max_active = 0
        self._lock = threading.Lock()
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_GET(self) -> None:  # noqa: N802 (http.server's naming)
                with server._lock:
                    server.active += 1
                    server.max_active = max(server.max_active, server.active)
                try:
                    self._answer()
                finally:
                    with server._lock:
                        server.active -= 1

            def _answer(self) -> None:
                path = self.path.split("?", 1)[0]
                headers = {k.lower(): v for k, v in self.headers.items()}
                server.requests.append((path, headers))
                script = server.scripts.get(path, Script(404, b"<Error><Code>NoSuchKey</Code></Error>"))
                if script.delay:
                    server.stopped.wait(script.delay)
                if script.etag is not None:
                    self._object(script, headers, len([r for r in server.requests if r[0] == path]))
                    return
                length = script.promised_length if script.promised_length is not None else len(script.body)
                self._send(script.status, script.body, {"Content-Length": str(length), **script.headers},
                           cut=script.promised_length is not None, trickle=script.trickle)

            def _object(self, script: Script, headers: dict[str, str], nth: int) -> None:
                etag = script.etag if nth == 1 or not script.etag_after_first else script.etag_after_first
                if script.expire_after is not None and nth > script.expire_after:
                    self._send(403, EXPIRED_XML, {"Content-Length": str(len(EXPIRED_XML))})
                    return
                if "if-match" in headers and headers["if-match"] != etag:
                    self._send(412, PRECONDITION_XML, {"Content-Length": str(len(PRECONDITION_XML))})
                    return
                body, status, extra = script.body, 200, {}
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
                           cut=cut is not None, trickle=script.trickle)

            def _send(self, status: int, body: bytes, headers: dict[str, str], cut: bool = False,
                      trickle: tuple[int, float] | None = None) -> None:
                self.send_response(status)
                for name, value in headers.items():
                    self.send_header(name, value)
                if cut or trickle:
                    self.send_header("Connection", "close")
                self.end_headers()
                try:
                    if trickle is None:
                        self.wfile.write(body)
                        self.wfile.flush()
                    else:  # a slow or stalling origin: a few bytes, then a pause, until the client leaves
                        step, pause = trickle
                        for start in range(0, len(body), step):
                            self.wfile.write(body[start:start + step])
                            self.wfile.flush()
                            if self._client_left(pause):
                                break
                except (BrokenPipeError, ConnectionResetError):
                    pass
                if trickle:
                    self.close_connection = True
                if cut:
                    self.close_connection = True

            def _client_left(self, seconds: float) -> bool:
                """Pause; True as soon as the client closes its end (or the server stops) meanwhile, so
                that ``active`` tells whether a client still holds a connection open."""
                ends = time.monotonic() + seconds
                while (left := ends - time.monotonic()) > 0:
                    if server.stopped.is_set():
                        return True
                    readable, _, _ = select.select([self.connection], [], [], min(left, 0.05))
                    if readable:  # end of file: our answer has Connection: close, no request follows
                        return True
                return server.stopped.is_set()

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
        return [headers for p, headers in self.requests if p == path]

    def stop(self) -> None:
        self.stopped.set()
        self._httpd.shutdown()
        self._httpd.server_close()
