"""The data file over several connections at once: consecutive byte ranges, reassembled in order.

One S3 connection carries roughly 50-90 MB/s; a Lambda function's network carries several times that
over parallel connections (as s3transfer's downloads and AWS's S3 performance guidance rely on). So
the data file is asked for as ranges of ``range_size`` bytes, ``connections`` of them in flight at a
time, and handed to the formats as the same readable stream a single GET gives: nothing downstream
knows.

- The first request asks for the first range. Its ETag pins every later range (``If-Match``): an
  object replaced mid-way answers 412, the same "changed while being read" error as a resumed single
  stream. Its ``Content-Range`` gives the total length.
- A server that ignores ``Range`` (200), or gives no ETag, no total length, or a ``Content-Encoding``
  (ranges of an encoded body are not slices of the decoded one), gets today's single stream instead.
- Each range is resumable on its own, as a single stream is: a dropped or short range is asked for
  again from its last byte, a bounded number of times with backoff; then it is an error.
- Memory is bounded: at most ``connections`` ranges are downloading or waiting, plus the one being
  read, so ``(connections + 1) * range_size`` bytes whatever the file's size.
"""

from __future__ import annotations

import re
import threading
import time
from collections import deque
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager
from typing import Any

import urllib3
from aws_lambda_powertools import Logger
from urllib3.exceptions import HTTPError, ProtocolError
from urllib3.exceptions import TimeoutError as Urllib3Timeout

from transforms import SERVICE_NAME
from transforms.errors import SourceError
from transforms.source import CHUNK_SIZE, CountedStream, HttpSource, SourceStream

logger = Logger(service=SERVICE_NAME, child=True)

_CONTENT_RANGE = re.compile(r"bytes (\d+)-(\d+)/(\d+)")
WAIT_SLICE_S = 1.0  # while waiting for a range, the deadline is checked this often


def open_data(source: Any, url: str, file: str, connections: int, range_size: int):  # noqa: ANN201
    """The data stream: ranged over ``connections`` when the source is HTTP(S) and more than one is
    allowed, else whatever ``source.open`` gives (a single GET, a local file, standard input)."""
    from transforms.local_source import LocalSource, is_url

    http = source if isinstance(source, HttpSource) else None
    if isinstance(source, LocalSource) and is_url(url):
        http = source.http
    if http is None or connections <= 1:
        return source.open(url, file)
    return open_ranged(http, url, file, connections=connections, range_size=range_size)


@contextmanager
def open_ranged(http: HttpSource, url: str, file: str, *, connections: int,
                range_size: int) -> Iterator[CountedStream]:
    """Start the download; read it through the yielded stream (ranged, or a single GET as fallback)."""
    try:
        first = http._get(url, file, {"Range": f"bytes=0-{range_size - 1}"})
    except SourceError as exc:
        if exc.upstream_status != 416:  # 416: an empty object has no first byte to ask for
            raise
        first = None
    if first is not None and first.status == 200:  # the server ignored Range: today's stream
        stream: CountedStream = SourceStream(http, url, file, first)
    else:
        plan = _ranged_plan(first) if first is not None else None
        if plan is None:
            if first is not None:
                first.close()
                first.release_conn()
            with http.open(url, file) as single:
                yield single
            return
        etag, total = plan
        stream = RangedStream(http, url, file, first, etag=etag, total=total,
                              connections=connections, range_size=range_size)  # type: ignore[arg-type]
    try:
        yield stream
    finally:
        stream.release()  # type: ignore[attr-defined]


def _ranged_plan(response: urllib3.BaseHTTPResponse) -> tuple[str, int] | None:
    """(ETag, total length) when this 206 can pin and size a ranged download, else None."""
    match = _CONTENT_RANGE.fullmatch(response.headers.get("Content-Range") or "")
    etag = response.headers.get("ETag")
    if response.status != 206 or not match or not etag or response.headers.get("Content-Encoding"):
        return None
    if int(match.group(1)) != 0:
        return None
    return etag, int(match.group(3))


class RangedStream(CountedStream):
    """Ranges fetched by a small thread pool, read back in order as one stream."""

    def __init__(self, http: HttpSource, url: str, file: str, first: urllib3.BaseHTTPResponse, *,
                 etag: str, total: int, connections: int, range_size: int) -> None:
        super().__init__(total)
        self._http = http
        self._url = url
        self._file = file
        self.etag = etag
        self._range_size = range_size
        self._closed = threading.Event()
        self._pool = ThreadPoolExecutor(connections, thread_name_prefix="range")
        self._pending: deque[Future[list[bytes]]] = deque()
        self._pieces: deque[bytes] = deque()
        self._next_start = 0
        self.resumes = 0  # across all ranges
        self._submit(first)
        for _ in range(connections - 1):
            self._submit()

    # -- consumer side (the formats' thread) -----------------------------------------------------------
    def _next_piece(self, size: int) -> bytes:
        while not self._pieces:
            if not self._pending:
                return b""
            pieces = self._wait(self._pending.popleft())
            self._submit()  # keep `connections` ranges downloading or waiting
            self._pieces.extend(pieces)
        piece = self._pieces.popleft()
        if len(piece) > size:
            self._pieces.appendleft(piece[size:])
            piece = piece[:size]
        return piece

    def _wait(self, future: Future[list[bytes]]) -> list[bytes]:
        """The range's bytes; the deadline (``on_read``) is still asked while a slow range arrives."""
        while True:
            try:
                return future.result(timeout=WAIT_SLICE_S)
            except TimeoutError:
                if self.on_read is not None:
                    self.on_read(0)

    def release(self) -> None:
        """Stop: ranges not started are dropped, running ones stop at their next piece."""
        self._closed.set()
        for future in self._pending:
            future.cancel()
        self._pending.clear()
        self._pieces.clear()
        self._pool.shutdown(wait=False, cancel_futures=True)

    # -- producer side (the pool) ----------------------------------------------------------------------
    def _submit(self, first: urllib3.BaseHTTPResponse | None = None) -> None:
        start = self._next_start
        assert self.content_length is not None
        if start >= self.content_length:
            return
        end = min(start + self._range_size, self.content_length) - 1
        self._next_start = end + 1
        self._pending.append(self._pool.submit(self._fetch, start, end, first))

    def _fetch(self, start: int, end: int, response: urllib3.BaseHTTPResponse | None) -> list[bytes]:
        """Bytes ``start..end`` (inclusive), resumed from the last byte received when a connection drops."""
        pieces: list[bytes] = []
        got, length, attempts = 0, end - start + 1, 0
        try:
            while got < length:
                if self._closed.is_set():
                    raise SourceError(f"the {self._file} file's download was stopped", self._file)
                if response is None:
                    response = self._request(start + got, end)
                cause: Exception | None = None
                try:
                    piece = response.read(min(CHUNK_SIZE, length - got), decode_content=False)
                except (ProtocolError, HTTPError) as exc:
                    piece, cause = b"", exc
                if piece:
                    pieces.append(piece)
                    got += len(piece)
                    continue
                # Dropped, or ended before the range did: ask again from here, a bounded number of times.
                response.close()
                response.release_conn()
                response = None
                attempts += 1
                reason = type(cause).__name__ if cause else "range ended early"
                if attempts > self._http.resume_attempts:
                    raise SourceError(
                        f"the {self._file} file's download broke off at byte {start + got} of "
                        f"{self.content_length} (range {start}-{end}, {reason}, after {attempts - 1} "
                        f"resumes)", self._file, timed_out=isinstance(cause, Urllib3Timeout)) from None
                self.resumes += 1
                logger.warning("resuming range", extra={"file": self._file, "offset": start + got,
                                                        "attempt": attempts, "reason": reason})
                time.sleep(self._http.backoff * 2 ** (attempts - 1))
        finally:
            if response is not None:
                response.release_conn()
        return pieces

    def _request(self, start: int, end: int) -> urllib3.BaseHTTPResponse:
        response = self._http._get(self._url, self._file,
                                   {"Range": f"bytes={start}-{end}", "If-Match": self.etag})
        expected = f"bytes {start}-{end}/{self.content_length}"
        if response.status != 206 or response.headers.get("Content-Range") != expected:
            response.close()
            response.release_conn()
            raise SourceError(f"the {self._file} file's server did not serve bytes {start}-{end} as asked "
                              f"(HTTP {response.status})", self._file)
        if response.headers.get("ETag") not in (None, self.etag):
            response.close()
            response.release_conn()
            raise SourceError(f"the {self._file} file changed while being read", self._file,
                              upstream_status=412)
        return response
