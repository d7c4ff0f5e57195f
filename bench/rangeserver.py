"""The benchmark's data source: S3's GET as a presigned URL answers it, with S3's per-connection pace.

``python -m bench.rangeserver --port P FILE...`` serves the files back to back as one object at
``/data`` (and the layout at ``/metadata``), as S3 does: ``Content-Length``, an ``ETag``, single byte
ranges (``Range: bytes=a-b`` or ``a-``, answered 206 with ``Content-Range``), ``If-Match`` (412 when it
does not match) and 416 past the end. Each connection is paced to at most ``cap`` bytes a second, given
per request in the query string (``cap=60000000``; absent or 0: as fast as loopback goes), as one S3
connection to a Lambda function carries roughly 50-90 MB/s. Bytes go out with ``sendfile``, so the
server costs little CPU next to the contender it feeds.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import re
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

SLICE = 256 * 1024  # bytes sent between two looks at the clock when paced
_RANGE = re.compile(r"bytes=(\d+)-(\d*)")


class ConcatenatedFiles:
    def __init__(self, paths: list[Path]) -> None:
        self.paths = paths
        self.sizes = [path.stat().st_size for path in paths]
        self.size = sum(self.sizes)
        stamp = "|".join(f"{p}:{s}:{p.stat().st_mtime_ns}" for p, s in zip(paths, self.sizes, strict=True))
        self.etag = '"' + hashlib.md5(stamp.encode()).hexdigest() + '"'

    def pieces(self, start: int, end: int) -> list[tuple[Path, int, int]]:
        """(file, offset, count) covering bytes start..end inclusive."""
        out, base = [], 0
        for path, size in zip(self.paths, self.sizes, strict=True):
            lo, hi = max(start, base), min(end + 1, base + size)
            if lo < hi:
                out.append((path, lo - base, hi - lo))
            base += size
        return out


def make_handler(data: ConcatenatedFiles, metadata: bytes) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_GET(self) -> None:  # noqa: N802 (http.server's naming)
            url = urlsplit(self.path)
            if url.path == "/metadata":
                self._reply(200, metadata, {"ETag": '"metadata"'})
                return
            if url.path != "/data":
                self._reply(404, b"<Error><Code>NoSuchKey</Code></Error>")
                return
            if self.headers.get("If-Match") not in (None, data.etag):
                self._reply(412, b"<Error><Code>PreconditionFailed</Code></Error>")
                return
            cap = int((parse_qs(url.query).get("cap") or ["0"])[0])
            start, end, status = 0, data.size - 1, 200
            headers = {"ETag": data.etag, "Accept-Ranges": "bytes"}
            match = _RANGE.fullmatch(self.headers.get("Range") or "")
            if match:
                start = int(match.group(1))
                if start >= data.size:
                    self._reply(416, b"<Error><Code>InvalidRange</Code></Error>")
                    return
                end = min(int(match.group(2) or data.size - 1), data.size - 1)
                status = 206
                headers["Content-Range"] = f"bytes {start}-{end}/{data.size}"
            self.send_response(status)
            for name, value in {**headers, "Content-Length": str(end - start + 1)}.items():
                self.send_header(name, value)
            self.end_headers()
            self._send(data.pieces(start, end), cap)

        def _send(self, pieces: list[tuple[Path, int, int]], cap: int) -> None:
            began, sent = time.monotonic(), 0
            try:
                for path, offset, count in pieces:
                    with open(path, "rb") as handle:
                        while count > 0:
                            n = min(count, SLICE) if cap else count
                            self.connection.sendfile(handle, offset, n)
                            offset, count, sent = offset + n, count - n, sent + n
                            if cap:
                                ahead = began + sent / cap - time.monotonic()
                                if ahead > 0:
                                    time.sleep(ahead)
            except (BrokenPipeError, ConnectionResetError):
                self.close_connection = True  # the client stopped reading (it had what it wanted)

        def _reply(self, status: int, body: bytes, headers: dict[str, str] | None = None) -> None:
            self.send_response(status)
            for name, value in {**(headers or {}), "Content-Length": str(len(body))}.items():
                self.send_header(name, value)
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: Any) -> None:
            pass

    return Handler


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--metadata", required=True)
    parser.add_argument("files", nargs="+")
    args = parser.parse_args()
    data = ConcatenatedFiles([Path(p) for p in args.files])
    handler = make_handler(data, Path(args.metadata).read_bytes())
    server = ThreadingHTTPServer(("127.0.0.1", args.port), handler)
    server.daemon_threads = True
    os.write(1, b"ready\n")
    server.serve_forever()


if __name__ == "__main__":
    main()
