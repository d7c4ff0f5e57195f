"""A misbehaving HTTP origin on 127.0.0.1, for the failures moto's server will not produce.

Each path is scripted: an S3-style refusal, a body cut short of its Content-Length, or silence.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

EXPIRED_XML = (b'<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>AccessDenied</Code>'
               b"<Message>Request has expired</Message><X-Amz-Expires>3600</X-Amz-Expires></Error>")


@dataclass
class Script:
    status: int = 200
    body: bytes = b""
    promised_length: int | None = None  # a Content-Length larger than the body: the connection drops
    delay: float = 0.0  # seconds of silence before answering


class FaultServer:
    def __init__(self) -> None:
        self.scripts: dict[str, Script] = {}
        self.requests: list[str] = []
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 (http.server's naming)
                path = self.path.split("?", 1)[0]
                server.requests.append(path)
                script = server.scripts.get(path, Script(404, b"<Error><Code>NoSuchKey</Code></Error>"))
                if script.delay:
                    time.sleep(script.delay)
                self.send_response(script.status)
                length = script.promised_length if script.promised_length is not None else len(script.body)
                self.send_header("Content-Length", str(length))
                self.end_headers()
                try:
                    self.wfile.write(script.body)
                    self.wfile.flush()
                except (BrokenPipeError, ConnectionResetError):
                    pass
                if script.promised_length is not None:
                    self.close_connection = True

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

    def stop(self) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()
