"""A loopback HTTP proxy in front of a local S3 that rewrites the checksum S3 says it stored.

It forwards every request unchanged (headers included, so signatures still match) and, depending on
its mode, alters the answers of PutObject and CompleteMultipartUpload: a different CRC32 (a store that
stored something else), none at all (a store that confirms nothing), or the right value under another
checksum type. Everything else passes through untouched, so the sink's own cleanup reaches the store.
"""

from __future__ import annotations

import re
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

import urllib3

HOP_BY_HOP = {"connection", "keep-alive", "transfer-encoding", "te", "trailer", "upgrade",
              "proxy-authorization", "proxy-authenticate"}
WRONG_CRC32 = "AAAAAA=="
_CHECKSUM = re.compile(rb"<ChecksumCRC32>[^<]*</ChecksumCRC32>")
_TYPE = re.compile(rb"<ChecksumType>[^<]*</ChecksumType>")


SLOW_DOWN = (b'<?xml version="1.0" encoding="UTF-8"?><Error><Code>SlowDown</Code>'
             b"<Message>Please reduce your request rate.</Message></Error>")


ACCESS_DENIED = (b'<?xml version="1.0" encoding="UTF-8"?><Error><Code>AccessDenied</Code>'
                 b"<Message>Access Denied</Message></Error>")


class ChecksumProxy:
    """``mode``: "wrong" (another CRC32), "strip" (no checksum), "composite" (right value, COMPOSITE),
    "none" (nothing rewritten). ``slow_down``: a regular expression over "METHOD path"; the first
    ``slow_downs`` requests matching it are answered 503 SlowDown (S3 throttling) instead of forwarded.
    ``deny``: every request matching it is answered 403 AccessDenied (a refusal that stays). ``lose``: the
    first ``losses`` requests matching it are forwarded (S3 does the work) but their answer is lost: the
    client gets 503 SlowDown, as when a connection drops after S3 acted."""

    def __init__(self, backend: str, mode: str, slow_down: str | None = None, slow_downs: int = 0,
                 deny: str | None = None, lose: str | None = None, losses: int = 0) -> None:
        self.backend = backend.rstrip("/")
        self._deny = re.compile(deny) if deny else None
        self.denied: list[str] = []
        self._lose = re.compile(lose) if lose else None
        self._losses = losses
        self.lost: list[str] = []
        self.mode = mode
        self.rewritten: list[str] = []  # the operations whose answer was altered
        self._slow_down = re.compile(slow_down) if slow_down else None
        self._slow_downs = slow_downs
        self.slowed: list[str] = []  # the requests answered 503
        self._lock = threading.Lock()
        self._pool = urllib3.PoolManager(maxsize=16)
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *_: object) -> None:
                pass

            def _forward(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else None
                request = f"{self.command} {self.path}"
                if proxy._slowed(request):
                    self._error(503, SLOW_DOWN)
                    return
                if proxy._deny is not None and proxy._deny.search(request):
                    with proxy._lock:
                        proxy.denied.append(request)
                    self._error(403, ACCESS_DENIED)
                    return
                headers = {k: v for k, v in self.headers.items() if k.lower() not in HOP_BY_HOP}
                answer = proxy._pool.request(self.command, proxy.backend + self.path, body=body,
                                             headers=headers, redirect=False, retries=False,
                                             decode_content=False, timeout=60)
                if proxy._lost(request):
                    self._error(503, SLOW_DOWN)
                    return
                out_headers = {k: v for k, v in answer.headers.items() if k.lower() not in HOP_BY_HOP}
                data = answer.data
                operation = proxy._operation(self.command, self.path, answer.status)
                if operation:
                    out_headers, data = proxy._rewrite(operation, out_headers, data, headers)
                self.send_response(answer.status)
                for name, value in out_headers.items():
                    if name.lower() != "content-length":
                        self.send_header(name, value)
                # A HEAD's answer has no body but the object's length.
                length = answer.headers.get("Content-Length", "0") if self.command == "HEAD" else len(data)
                self.send_header("Content-Length", str(length))
                self.end_headers()
                if self.command != "HEAD":
                    self.wfile.write(data)

            def _error(self, status: int, body: bytes) -> None:
                self.send_response(status)
                self.send_header("Content-Type", "application/xml")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                if self.command != "HEAD":
                    self.wfile.write(body)

            do_GET = do_PUT = do_POST = do_DELETE = do_HEAD = _forward

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()
        self.endpoint = f"http://127.0.0.1:{self._server.server_address[1]}"

    def _slowed(self, request: str) -> bool:
        with self._lock:
            if self._slow_down is None or len(self.slowed) >= self._slow_downs or \
                    not self._slow_down.search(request):
                return False
            self.slowed.append(request)
            return True

    def _lost(self, request: str) -> bool:
        with self._lock:
            if self._lose is None or len(self.lost) >= self._losses or not self._lose.search(request):
                return False
            self.lost.append(request)
            return True

    @staticmethod
    def _operation(method: str, path: str, status: int) -> str | None:
        if status != 200:
            return None
        query = parse_qs(urlsplit(path).query, keep_blank_values=True)
        if method == "PUT" and "uploadId" not in query and "partNumber" not in query and len(
                [p for p in urlsplit(path).path.split("/") if p]) >= 2:
            return "PutObject"
        if method == "POST" and "uploadId" in query:
            return "CompleteMultipartUpload"
        return None

    def _rewrite(self, operation: str, headers: dict[str, str], data: bytes,
                 request_headers: dict[str, str]) -> tuple[dict[str, str], bytes]:
        if self.mode == "none":
            return headers, data
        self.rewritten.append(operation)
        ours = next((v for k, v in request_headers.items() if k.lower() == "x-amz-checksum-crc32"), None)
        headers = {k: v for k, v in headers.items() if not k.lower().startswith("x-amz-checksum-")}
        data = _TYPE.sub(b"", _CHECKSUM.sub(b"", data))
        if self.mode == "strip":
            return headers, data
        value = WRONG_CRC32 if self.mode == "wrong" else (ours or WRONG_CRC32)
        kind = "COMPOSITE" if self.mode == "composite" else "FULL_OBJECT"
        if operation == "PutObject":
            headers["x-amz-checksum-crc32"] = value
            headers["x-amz-checksum-type"] = kind
            return headers, data
        element = f"<ChecksumCRC32>{value}</ChecksumCRC32><ChecksumType>{kind}</ChecksumType>".encode()
        return headers, data.replace(b"</CompleteMultipartUploadResult>",
                                     element + b"</CompleteMultipartUploadResult>")

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(5)
