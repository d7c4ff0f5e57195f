"""DynamoDB as AWS answers it when throttling or refusing: a proxy on 127.0.0.1 in front of moto's server.

moto never throttles and, by default, never denies. This proxy forwards every request to moto, except
those a test's rule picks, which get DynamoDB's own error answer (HTTP 400, ``__type`` ending in
``error``: ProvisionedThroughputExceededException by default, AccessDeniedException, ...: the error body
of DynamoDB's JSON protocol). Clients reach it through the standard ``AWS_ENDPOINT_URL_DYNAMODB`` variable.

A test may also hold requests and watch answers: ``before`` is called (on the request's own thread)
before a request is forwarded, and may block it; ``after`` is called with moto's answer before the client
gets it. One proxy per process tells the test which process sent what.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import urllib3

THROTTLED = "ProvisionedThroughputExceededException"
Rule = Callable[[str, dict[str, Any]], bool]  # (operation, request body) -> throttle it?
Before = Callable[[str, dict[str, Any]], None]  # (operation, request body), before it is forwarded
After = Callable[[str, dict[str, Any], int, bytes], None]  # (operation, request body, status, answer body)


class DynamoDBProxy:
    def __init__(self, upstream: str) -> None:
        self.rule: Rule = lambda operation, body: False
        self.error = THROTTLED
        self.throttled: list[tuple[str, str]] = []  # (operation, table) of every throttled request
        self.before: Before = lambda operation, body: None
        self.after: After = lambda operation, body, status, answer: None
        pool = urllib3.PoolManager()
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self) -> None:  # noqa: N802 (http.server's naming)
                raw = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                operation = self.headers.get("X-Amz-Target", "").rpartition(".")[2]
                body = json.loads(raw or b"{}")
                if proxy.rule(operation, body):
                    proxy.throttled.append((operation, body.get("TableName", "")))
                    error = {"__type": f"com.amazonaws.dynamodb.v20120810#{proxy.error}",
                             "message": f"{proxy.error} (from the test's proxy)"}
                    headers = {"Content-Type": "application/x-amz-json-1.0", "x-amzn-ErrorType": proxy.error}
                    self._answer(400, json.dumps(error).encode(), headers)
                    return
                headers = {k: v for k, v in self.headers.items()
                           if k.lower() not in ("host", "content-length")}
                proxy.before(operation, body)
                upstream_response = pool.request("POST", upstream + self.path, body=raw, headers=headers,
                                                 timeout=30.0, retries=False)
                proxy.after(operation, body, upstream_response.status, upstream_response.data)
                self._answer(upstream_response.status, upstream_response.data,
                             {k: v for k, v in upstream_response.headers.items()
                              if k.lower() in ("content-type", "x-amzn-requestid", "x-amz-crc32")})

            def _answer(self, status: int, body: bytes, headers: dict[str, str]) -> None:
                self.send_response(status)
                for name, value in headers.items():
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: Any) -> None:
                pass

        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._httpd.daemon_threads = True
        threading.Thread(target=self._httpd.serve_forever, daemon=True).start()

    @property
    def endpoint(self) -> str:
        host, port = self._httpd.server_address[:2]
        return f"http://{host}:{port}"

    def stop(self) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()
