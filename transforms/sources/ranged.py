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
  read, so ``(connections + 1) * range_size`` bytes whatever the file's size. Fewer when the reader is
  the slower side (Parquet, ORC, JSON Lines convert at a connection's speed or so): the read-ahead
  starts at ``START_AHEAD`` ranges and grows by one each time the reader finds its next range still
  downloading, so only a reader that the network keeps waiting gets every connection. Once the first
  ``connections`` ranges are read, it grows only when that happens ``SHORT_IN_A_ROW`` times in a row: a
  reader the network keeps waiting still finds range after range missing and gets every connection,
  but one slower than the network no longer gains a range for good each time a range comes late (one
  starved of CPU on a shared machine, a slow response). Before, `.parquet`'s read-ahead crept from 6 to
  8-9 ranges over a 1 GiB run and never came back (bench/ranged.py, capped both ways, 2 cores, issue
  21); now it stays at 6-7 (8 once in four runs), and `.csv` still reaches every connection in its first
  ranges, at the same walls.
- Every wait is bounded by ``read_timeout`` and the run's deadline, as a single stream's are (the
  ``HttpSource`` primitives): each range's requests and resumes (``timeout_for``), each of its socket
  reads (``set_read_timeout(read_wait)`` before one ``read1``, so a trickle cannot hold a read open),
  each backoff, and the reader's wait for the next range. A trickling or silent range is stopped on the
  deadline with a ``DeadlineError``, which reaches the reader and aborts the upload.
- A range's connection goes back to the pool only once its range was read whole; any other way a range
  ends (a refusal, the deadline, the reader stopping) closes it (``finish``), so no later request to
  the host is sent on a connection still carrying this one's bytes. When the reader stops, ranges in
  flight are woken at once (their sockets shut for reading), not when their read times out.
"""

from __future__ import annotations

import re
import threading
import time
from collections import deque
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager, suppress
from typing import Any

import urllib3
from aws_lambda_powertools import Logger
from urllib3.exceptions import HTTPError, ProtocolError
from urllib3.exceptions import TimeoutError as Urllib3Timeout

from transforms import SERVICE_NAME
from transforms.errors import SourceError
from transforms.progress import Deadline
from transforms.sources.http import (
    CONNECT_RETRIES,
    CountedStream,
    HttpSource,
    SourceStream,
    check_media,
    check_whole,
    finish,
    set_read_timeout,
)

logger = Logger(service=SERVICE_NAME, child=True)

_CONTENT_RANGE = re.compile(r"bytes (\d+)-(\d+)/(\d+)")
START_AHEAD = 2  # ranges fetched ahead of the reader at first (then up to ``connections``)
SHORT_IN_A_ROW = 2  # after the first ``connections`` ranges, waits in a row that add a range ahead
WAIT_SLICE_S = 1.0  # while waiting for a range, the deadline is checked this often
STALL_SLACK_S = 5.0  # on top of a fetcher's longest single wait (urllib3's retry backoffs, scheduling)
# Most bytes one socket read asks for. A read allocates what it asks for and shrinks it to what arrived
# (a socket holds some tens of KiB). With an arena per thread, eight threads asking for 1 MiB each left
# glibc's heaps ever more fragmented and peak RSS grew with the file (1x -> 4x, 1 core: 1 MiB 166 -> 221
# MB, 256 KiB 167 -> 189 MB, 64 KiB 148 -> 173 MB). With one arena (transforms.memory), 128 KiB stays
# level (121 -> 137-143 MB, the same as 64 KiB) and takes ~0.3 s less CPU per GB (4 alternating runs).
RANGE_READ_SIZE = 128 * 1024


def open_data(source: Any, url: str, file: str, connections: int, range_size: int,  # noqa: ANN201
              deadline: Deadline | None = None):
    """The data stream: ranged over ``connections`` when the source is HTTP(S) and more than one is
    allowed, else whatever ``source.open`` gives (a single GET, a local file, standard input); every
    network wait either way within ``deadline``."""
    from transforms.sources.local import LocalSource, is_url

    http = source if isinstance(source, HttpSource) else None
    if isinstance(source, LocalSource) and is_url(url):
        http = source.http
    if http is None or connections <= 1:
        return source.open(url, file, deadline=deadline)
    return open_ranged(http, url, file, connections=connections, range_size=range_size, deadline=deadline)


@contextmanager
def open_ranged(http: HttpSource, url: str, file: str, *, connections: int, range_size: int,
                deadline: Deadline | None = None) -> Iterator[CountedStream]:
    """Start the download; read it through the yielded stream (ranged, or a single GET as fallback)."""
    try:
        first = http._get(url, file, {"Range": f"bytes=0-{range_size - 1}"}, deadline)
    except SourceError as exc:
        if exc.upstream_status != 416:  # 416: an empty object has no first byte to ask for
            raise
        first = None
    plan = None
    if first is not None:
        try:
            if first.status == 200:  # the server ignored Range: checked as the plain GET it answered
                check_whole(first, file)
            else:
                plan = _ranged_plan(first)
                if plan is not None:
                    check_media(first, file)  # a 206 of an error page is no more the file than a 200
        except BaseException:
            finish(first)
            raise
    if first is not None and first.status == 200:  # today's stream
        stream: CountedStream = SourceStream(http, url, file, first, deadline)
    elif plan is None:
        if first is not None:
            finish(first)
        with http.open(url, file, deadline=deadline) as single:
            yield single
        return
    else:
        etag, total = plan
        stream = RangedStream(http, url, file, first, etag=etag, total=total,  # type: ignore[arg-type]
                              connections=connections, range_size=range_size, deadline=deadline)
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
                 etag: str, total: int, connections: int, range_size: int,
                 deadline: Deadline | None = None) -> None:
        super().__init__(total)
        self._http = http
        self._url = url
        self._file = file
        self.etag = etag
        self._range_size = range_size
        self._deadline = deadline
        # The longest any fetcher goes without a sign of life when nothing is wrong: one request's
        # connection attempts and answer, one read, or the last backoff; a range silent for longer
        # than that is stuck, and the reader stops waiting for it.
        self._stall_limit = (http.read_timeout + (CONNECT_RETRIES + 1) * http.connect_timeout
                             + http.backoff * 2 ** http.resume_attempts + STALL_SLACK_S)
        self._last_activity = time.monotonic()
        self._closed = threading.Event()
        self._pool = ThreadPoolExecutor(connections, thread_name_prefix="range")
        self._connections = connections
        self.ahead = min(START_AHEAD, connections)  # ranges downloading or waiting for the reader
        self._taken = 0  # ranges the reader has taken
        self._short = 0  # of them, the last ones in a row that were still downloading when taken
        self._pending: deque[Future[list[bytes]]] = deque()
        self._pieces: deque[bytes] = deque()
        self._next_start = 0
        self.resumes = 0  # across all ranges
        self._lock = threading.Lock()
        self._reading: set[urllib3.BaseHTTPResponse] = set()  # responses a fetcher is reading now
        self._first = first
        self._submit(first)
        self._first_fetch: Future[list[bytes]] | None = self._pending[0] if self._pending else None
        self._fill()

    # -- consumer side (the formats' thread) -----------------------------------------------------------
    def _next_piece(self, size: int) -> bytes:
        while not self._pieces:
            if not self._pending:
                return b""
            future = self._pending.popleft()
            self._grow_if_short(future.done())
            pieces = self._wait(future)
            self._fill()
            self._pieces.extend(pieces)
        piece = self._pieces.popleft()
        if len(piece) > size:
            self._pieces.appendleft(piece[size:])
            piece = piece[:size]
        return piece

    def _grow_if_short(self, arrived: bool) -> None:
        """One more range ahead when the reader found its next range still downloading: at once while
        the first ``connections`` ranges are taken, then only when it happens twice in a row (see the
        module docstring)."""
        self._taken += 1
        self._short = 0 if arrived else self._short + 1
        warming = self._taken <= self._connections
        if self._short and self.ahead < self._connections and (warming or self._short >= SHORT_IN_A_ROW):
            self.ahead += 1  # the network is the slower side: one more connection

    def _wait(self, future: Future[list[bytes]]) -> list[bytes]:
        """The range's bytes, waited for in slices: never past the deadline, never on a stuck range.

        The fetchers bound their own waits; this bounds the reader's even if one of them were stuck.
        ``on_read`` (progress, and the deadline's projection) is still called while a slow range arrives.
        """
        while True:
            wait = WAIT_SLICE_S
            if self._deadline is not None:
                if self._deadline.expired():
                    raise self._deadline.stop(f"waiting for the {self._file} file's next range, after "
                                              f"{self.bytes_read} bytes",
                                              {"file": self._file, "bytes_done": self.bytes_read})
                wait = self._deadline.wait_bound(WAIT_SLICE_S)
            try:
                return future.result(timeout=max(wait, 0.001))
            except TimeoutError:
                if time.monotonic() - self._last_activity > self._stall_limit:
                    raise SourceError(f"the {self._file} file's download stalled: no range made progress "
                                      f"for {self._stall_limit:.0f} s, after {self.bytes_read} bytes",
                                      self._file, timed_out=True) from None
                if self.on_read is not None:
                    self.on_read(0)

    def release(self) -> None:
        """Stop: ranges not started are dropped; running ones are woken from their read (their socket
        shut for reading, so the read ends at once rather than at its timeout) and close their
        connections; a fetcher still waiting for an answer stops when it comes."""
        self._closed.set()
        if self._first_fetch is not None and self._first_fetch.cancel():
            finish(self._first)  # its fetcher never started: the first range's response is ours to close
        for future in self._pending:
            future.cancel()
        self._pending.clear()
        self._pieces.clear()
        self._pool.shutdown(wait=False, cancel_futures=True)
        with self._lock:
            for response in self._reading:
                _interrupt(response)

    # -- producer side (the pool) ----------------------------------------------------------------------
    def _fill(self) -> None:
        """Keep ``ahead`` ranges downloading or waiting (fewer at the end of the file)."""
        while len(self._pending) < self.ahead and self._next_start < (self.content_length or 0):
            self._submit()

    def _submit(self, first: urllib3.BaseHTTPResponse | None = None) -> None:
        start = self._next_start
        assert self.content_length is not None
        if start >= self.content_length:
            return
        end = min(start + self._range_size, self.content_length) - 1
        self._next_start = end + 1
        self._pending.append(self._pool.submit(self._fetch, start, end, first))

    def _fetch(self, start: int, end: int, response: urllib3.BaseHTTPResponse | None) -> list[bytes]:
        """Bytes ``start..end`` (inclusive), resumed from the last byte received when a connection drops.

        Each read is one socket read (``read1``) whose wait is bounded by the read timeout and the
        deadline: a trickle returns a few bytes at a time, and the deadline is checked between them.
        """
        pieces: list[bytes] = []
        got, length, attempts = 0, end - start + 1, 0
        timeout_set: float | None = None  # the socket timeout last set on this response
        self._last_activity = time.monotonic()  # every step below marks a sign of life
        try:
            while got < length:
                self._check_stopped()
                self._check_deadline(start + got)
                if response is None:
                    response = self._request(start + got, end)
                    self._last_activity = time.monotonic()
                    timeout_set = None
                with self._lock:  # from here, release() can wake this fetcher from its read
                    self._reading.add(response)
                self._check_stopped()  # release() may have come before the line above
                cause: Exception | None = None
                try:
                    wait = self._http.read_wait(self._deadline)
                    if wait != timeout_set:  # the read timeout until the deadline nears, then less each time
                        set_read_timeout(response, wait)
                        timeout_set = wait
                    piece = response.read1(min(RANGE_READ_SIZE, length - got), decode_content=False)
                except (ProtocolError, HTTPError, OSError) as exc:
                    if self._deadline is not None and self._deadline.seconds_left() < 0.1:  # the wait ran out
                        self._check_deadline(start + got, force=True)
                    piece, cause = b"", exc
                if piece:
                    pieces.append(piece)
                    got += len(piece)
                    self._last_activity = time.monotonic()
                    continue
                self._check_stopped()  # woken by release(), not dropped
                # Dropped, or ended before the range did: ask again from here, a bounded number of times.
                self._done_with(response)
                response = None
                attempts += 1
                reason = type(cause).__name__ if cause else "range ended early"
                if attempts > self._http.resume_attempts:
                    raise SourceError(
                        f"the {self._file} file's download broke off at byte {start + got} of "
                        f"{self.content_length} (range {start}-{end}, {reason}, after {attempts - 1} "
                        f"resumes)", self._file,
                        timed_out=isinstance(cause, Urllib3Timeout | TimeoutError)) from None
                self.resumes += 1
                logger.warning("resuming range", extra={"file": self._file, "offset": start + got,
                                                        "attempt": attempts, "reason": reason})
                pause = self._http.backoff * 2 ** (attempts - 1)
                if self._deadline is not None and self._deadline.seconds_left() <= pause:
                    self._check_deadline(start + got, force=True, what="about to resume")
                self._closed.wait(pause)  # a backoff that ends at once when the reader has stopped
                self._last_activity = time.monotonic()
        finally:
            if response is not None:
                self._done_with(response)  # mid-range (stopped, refused, the deadline): closed
        return pieces

    def _done_with(self, response: urllib3.BaseHTTPResponse) -> None:
        with self._lock:
            self._reading.discard(response)
        finish(response)

    def _check_stopped(self) -> None:
        if self._closed.is_set():
            raise SourceError(f"the {self._file} file's download was stopped", self._file)

    def _check_deadline(self, offset: int, force: bool = False, what: str = "reading") -> None:
        """Stop this range on the deadline (``force``: a wait ran into it, or a backoff would)."""
        if self._deadline is not None and (force or self._deadline.expired()):
            raise self._deadline.stop(f"{what} the {self._file} file's range at byte {offset}",
                                      {"file": self._file, "bytes_done": self.bytes_read})

    def _request(self, start: int, end: int) -> urllib3.BaseHTTPResponse:
        response = self._http._get(self._url, self._file,
                                   {"Range": f"bytes={start}-{end}", "If-Match": self.etag}, self._deadline)
        expected = f"bytes {start}-{end}/{self.content_length}"
        if response.status != 206 or response.headers.get("Content-Range") != expected:
            finish(response)
            raise SourceError(f"the {self._file} file's server did not serve bytes {start}-{end} as asked "
                              f"(HTTP {response.status})", self._file)
        if response.headers.get("ETag") not in (None, self.etag):
            finish(response)
            raise SourceError(f"the {self._file} file changed while being read", self._file,
                              upstream_status=412)
        return response


def _interrupt(response: urllib3.BaseHTTPResponse) -> None:
    """Wake the fetcher blocked reading ``response``: its socket is shut for reading, so the read ends
    now (as a broken body, which the fetcher then closes) instead of at its timeout."""
    with suppress(ValueError, RuntimeError, OSError):  # read to its end and released meanwhile, or closed
        response.shutdown()
