"""Reading the staged files from their presigned URLs over HTTP, streamed, never buffered whole.

Errors never carry the URL itself (its query string is a credential); they name the file instead
("data" or "metadata") and, where S3 said why, S3's error code.
"""

from __future__ import annotations

import io
import re
import time
import zlib
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

import urllib3
from aws_lambda_powertools import Logger
from urllib3.exceptions import HTTPError, MaxRetryError, NewConnectionError, ProtocolError
from urllib3.exceptions import TimeoutError as Urllib3Timeout

from transforms import SERVICE_NAME
from transforms.errors import SourceError, UnprocessableError
from transforms.progress import Deadline

if TYPE_CHECKING:
    from transforms.settings import Settings

CHUNK_SIZE = 1024 * 1024
_S3_CODE = re.compile(rb"<Code>([A-Za-z0-9]+)</Code>")


logger = Logger(service=SERVICE_NAME, child=True)

# A 200 page of one of these types is a proxy's or a portal's error page, never a staged CSV or layout.
_PAGE_TYPES = ("text/html", "application/xhtml+xml", "text/xml", "application/xml")
_GZIP_ENCODINGS = ("gzip", "x-gzip")
_ERROR_BODY_WAIT_S = 5.0  # how long an error's body (S3's <Code>) is waited for at most


_DRAIN_MAX = 64 * 1024  # a body this small is read to its end to keep its connection; a larger one is not


def finish(response: urllib3.BaseHTTPResponse) -> None:
    """Hand ``response``'s connection back to the pool: reusable if its body was read to its end, else
    closed first. Every response this package opens ends here, however its reading ended.

    urllib3's ``release_conn`` puts a connection back as it is. One left mid-body (the deadline, a size
    limit, a bad gzip body, a consumer that stopped, a refusal whose page was read only in part) still
    has the rest of that body on its way, and the next request to the host (in a warm Lambda, the next
    job's: every presigned URL of a tenant shares one S3 host) would be sent on it and read that rest
    as its answer: a hang until the read timeout, or a ProtocolError. urllib3 checks a pooled
    connection only for bytes already waiting, which a slow source has not sent yet. A closed
    connection in the pool is opened afresh by its next request.
    """
    if not response.closed:  # urllib3 closes (and releases) a body read to its end, or one that broke
        response.close()
    response.release_conn()


def set_read_timeout(response: urllib3.BaseHTTPResponse, seconds: float) -> None:
    """Bound the next socket read of ``response`` (a socket timeout is per read, not per body)."""
    sock = getattr(getattr(response, "connection", None), "sock", None)
    if sock is not None:
        sock.settimeout(max(seconds, 0.001))


class HttpSource:
    """A connection pool with bounded timeouts; one per warm Lambda container.

    Every wait on the network (connecting, the answer's headers, each read of the body) is bounded by
    the read (or connect) timeout and, when one is given, by the run's ``Deadline``: a source that goes
    silent or sends a trickle is stopped on time, with a ``DeadlineError`` the pipeline cleans up after.
    The ranged download (transforms.sources.ranged) uses the same mechanism in every range fetcher:
    ``timeout_for(deadline)`` for each request and ``set_read_timeout(response, read_wait(deadline))``
    before each ``read1``.
    """

    def __init__(self, connect_timeout: float = 10.0, read_timeout: float = 60.0,
                 resume_attempts: int = 5, backoff: float = 0.5) -> None:
        self.resume_attempts = resume_attempts
        self.backoff = backoff
        self.connect_timeout = connect_timeout
        self.read_timeout = read_timeout
        self._pool = urllib3.PoolManager(
            maxsize=32,  # kept per host for the ranged download's connections (settings.MAX_CONNECTIONS)
            timeout=urllib3.Timeout(connect=connect_timeout, read=read_timeout),
            retries=_retries(None),
        )

    @classmethod
    def from_settings(cls, settings: Settings) -> HttpSource:
        """The deployment's timeouts and resume attempts: how the functions and the CLI all build it."""
        return cls(settings.connect_timeout, settings.read_timeout, settings.resume_attempts)

    def read_wait(self, deadline: Deadline | None) -> float:
        """The longest one read may wait: the read timeout, less when the deadline is nearer."""
        return self.read_timeout if deadline is None else deadline.wait_bound(self.read_timeout)

    def timeout_for(self, deadline: Deadline | None) -> urllib3.Timeout:
        """A request's timeouts; with a deadline, none of them (nor all together) reaches past it."""
        if deadline is None:
            return urllib3.Timeout(connect=self.connect_timeout, read=self.read_timeout)
        left = max(deadline.seconds_left(), 0.001)
        # Up to three connection attempts share what is left; the answer's wait gets all of it.
        return urllib3.Timeout(total=left, connect=min(self.connect_timeout, left / (CONNECT_RETRIES + 1)),
                               read=min(self.read_timeout, left))

    @contextmanager
    def open(self, url: str, file: str, deadline: Deadline | None = None) -> Iterator[SourceStream]:
        """Start a streaming GET of the whole file; the body is read through the yielded stream."""
        response = self._get(url, file, {}, deadline)
        try:
            check_whole(response, file)
            stream = SourceStream(self, url, file, response, deadline)
        except BaseException:
            finish(response)
            raise
        try:
            yield stream
        finally:
            stream.release()

    def _get(self, url: str, file: str, headers: dict[str, str],
             deadline: Deadline | None = None) -> urllib3.BaseHTTPResponse:
        if deadline is not None and deadline.expired():
            raise deadline.stop(f"waiting to fetch the {file} file")
        try:
            response = self._pool.request("GET", url, headers=headers, preload_content=False,
                                          redirect=False, timeout=self.timeout_for(deadline),
                                          retries=_retries(deadline))
        except HTTPError as exc:
            # Retries wrap the last cause; look through them to tell a timeout from a refusal.
            cause = exc.reason if isinstance(exc, MaxRetryError) and exc.reason else exc
            if isinstance(cause, Urllib3Timeout) and not isinstance(cause, NewConnectionError):
                if deadline is not None and deadline.expired():
                    raise deadline.stop(f"waiting for the {file} file's URL to answer") from None
                raise SourceError(f"timed out waiting for the {file} file's URL to answer", file,
                                  timed_out=True) from None
            if deadline is not None and deadline.expired():
                raise deadline.stop(f"connecting to the {file} file's URL") from None
            raise SourceError(f"the {file} file's URL could not be reached ({type(cause).__name__})",
                              file) from None
        if response.status >= 300:
            try:
                raise _status_error(response, file, deadline, self)
            finally:
                finish(response)  # the refusal's page was read in part at most
        return response

    def size(self, url: str, file: str, deadline: Deadline | None = None) -> int | None:
        """The file's size without downloading it: a presigned GET URL does not allow HEAD (the method
        is part of the signature), so ask for its first byte and read the total from Content-Range."""
        response = self._get(url, file, {"Range": "bytes=0-0"}, deadline)
        try:
            total = (response.headers.get("Content-Range") or "").rpartition("/")[2]
            if response.status == 206 and total.isdigit():
                return int(total)
            length = response.headers.get("Content-Length")  # a server that ignored the range
            return int(length) if response.status == 200 and length and length.isdigit() else None
        finally:
            remaining = response.length_remaining
            if response.status == 206 and remaining is not None and remaining <= _DRAIN_MAX:
                set_read_timeout(response, self.read_wait(deadline))
                response.drain_conn()  # the one byte asked for: its connection can serve the download
            finish(response)

    def fetch(self, url: str, file: str, limit: int, deadline: Deadline | None = None) -> bytes:
        """Read a small file whole (the metadata); refuse one larger than ``limit`` bytes (422: the
        caller staged it, and no retry makes it smaller)."""
        with self.open(url, file, deadline) as stream:
            if stream.content_length is not None and stream.content_length > limit \
                    and not stream.encoded:
                raise too_large(file, limit)
            data = bytearray()
            for chunk in stream.chunks(64 * 1024):
                data += chunk
                if len(data) > limit:
                    raise too_large(file, limit)
            return bytes(data)


CONNECT_RETRIES = 2


class _DeadlineRetry(urllib3.Retry):
    """urllib3's retries, which also stop (with their backoff) once the deadline has passed."""

    deadline: Deadline | None = None

    def new(self, **kw: Any) -> _DeadlineRetry:
        retry = super().new(**kw)
        retry.deadline = self.deadline
        return retry

    def is_exhausted(self) -> bool:
        return super().is_exhausted() or (self.deadline is not None and self.deadline.seconds_left() <= 0)

    def sleep(self, response: urllib3.BaseHTTPResponse | None = None) -> None:
        if self.deadline is None or self.deadline.seconds_left() > self.get_backoff_time():
            super().sleep(response)


def _retries(deadline: Deadline | None) -> urllib3.Retry:
    """Connection failures are retried; a GET that got an answer is not, and a presigned URL never
    redirects, so a redirect is an error rather than a hop to somewhere unvetted."""
    retry = _DeadlineRetry(total=CONNECT_RETRIES, connect=CONNECT_RETRIES, read=0, status=0, redirect=0,
                           backoff_factor=0.5, raise_on_redirect=False)
    retry.deadline = deadline
    return retry


def too_large(file: str, limit: int) -> UnprocessableError:
    return UnprocessableError(f"the {file} file is larger than its limit of {limit} bytes", [{"file": file}])


def check_whole(response: urllib3.BaseHTTPResponse, file: str) -> None:
    """A GET of the whole file must answer 200 with the file: not a part, not nothing, not a web page."""
    if response.status != 200:
        what = {206: "only part of the file (206 Partial Content) to a request for all of it",
                204: "no content (204)"}.get(response.status, f"HTTP {response.status} instead of 200")
        raise SourceError(f"the {file} file could not be fetched: the server answered {what}", file,
                          upstream_status=response.status)
    check_media(response, file)
    encoding = (response.headers.get("Content-Encoding") or "identity").strip().lower()
    if encoding not in ("identity", "") + _GZIP_ENCODINGS:
        raise SourceError(f"the {file} file is sent with Content-Encoding {encoding[:40]!r}, which this "
                          "connector does not decode (gzip is)", file, upstream_status=200)


def check_media(response: urllib3.BaseHTTPResponse, file: str) -> None:
    """A body typed as an HTML or XML page is a proxy's or portal's error page, never the staged file."""
    media = (response.headers.get("Content-Type") or "").split(";")[0].strip().lower()
    if media in _PAGE_TYPES or media.endswith("+xml"):
        raise SourceError(f"the {file} file's URL answered a web page ({media}), not the staged file: "
                          "a proxy's or portal's error page, most likely", file,
                          upstream_status=response.status)


def _status_error(response: urllib3.BaseHTTPResponse, file: str, deadline: Deadline | None = None,
                  source: HttpSource | None = None) -> SourceError:
    """Turn an HTTP refusal into a message naming the file and S3's reason, if it gave one."""
    status = response.status
    wait = min(_ERROR_BODY_WAIT_S, source.read_wait(deadline) if source else _ERROR_BODY_WAIT_S)
    try:
        set_read_timeout(response, wait)
        body = response.read1(4096, decode_content=True) or b""  # one read: a trickle cannot hold us
    except (HTTPError, OSError, zlib.error):
        body = b""
    match = _S3_CODE.search(body)
    reason = f" ({match.group(1).decode()})" if match else ""
    if status == 412:
        what = "it changed while being read (its ETag no longer matches)"
    elif status in (401, 403):
        what = "access was refused; the presigned URL may have expired"
    elif status == 404:
        what = "it was not found"
    elif 300 <= status < 400:
        what = "the URL redirected elsewhere, which a presigned URL never does"
    else:
        what = "the server failed"
    return SourceError(f"the {file} file could not be fetched: HTTP {status}{reason}, {what}", file,
                       upstream_status=status)


class CountedStream(io.RawIOBase):
    """A readable that counts what it hands out and tells ``on_read`` (progress, deadline) each piece.

    Read as chunks (the CSV writers) or as a file (pyarrow asks for whole CSV blocks): a large read is
    filled piece by piece, so progress moves, and a resumed download loses at most one piece.
    Subclasses supply ``_next_piece``.
    """

    def __init__(self, content_length: int | None) -> None:
        super().__init__()
        self.bytes_read = 0
        self.content_length = content_length
        self.on_read: Callable[[int], None] | None = None

    def _next_piece(self, size: int) -> bytes:
        raise NotImplementedError

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        data = self.read(len(buffer))
        buffer[: len(data)] = data
        return len(data)

    def read(self, size: int = -1) -> bytes:
        if size is None or size < 0:
            return b"".join(self.chunks())
        pieces, wanted = [], size
        while wanted > 0:
            piece = self._take(min(wanted, CHUNK_SIZE))
            if not piece:
                break
            pieces.append(piece)
            wanted -= len(piece)
        return pieces[0] if len(pieces) == 1 else b"".join(pieces)

    def chunks(self, size: int = CHUNK_SIZE) -> Iterator[bytes]:
        """The stream's pieces as they arrive, each at most ``size`` bytes: not joined into reads of a
        fixed size, so a passthrough copies nothing on the way to its sink."""
        while True:
            piece = self._take(size)
            if not piece:
                return
            yield piece

    def _take(self, size: int) -> bytes:
        piece = self._next_piece(size)
        if piece:
            self.bytes_read += len(piece)
            if self.on_read is not None:
                self.on_read(len(piece))
        return piece


class _Gunzip:
    """``Content-Encoding: gzip`` decoded here rather than by urllib3: what came over the wire is
    counted against Content-Length, a body that ends without its gzip trailer is an error (urllib3
    would hand out the truncated text as the whole), and output per call is bounded (a bomb is
    inflated one piece at a time). Concatenated members are read in turn, as gzip(1) does."""

    def __init__(self) -> None:
        self._inflate = zlib.decompressobj(31)
        self._tail = b""
        self.fed = False

    def decode(self, data: bytes, limit: int) -> bytes:
        pending = self._tail + data if self._tail else data
        self.fed = self.fed or bool(data)
        while True:
            out = self._inflate.decompress(pending, limit)
            if self._inflate.eof and self._inflate.unused_data:
                rest = self._inflate.unused_data
                self._inflate = zlib.decompressobj(31)
                if out:
                    self._tail = rest
                    return out
                pending = rest
                continue
            self._tail = self._inflate.unconsumed_tail
            return out

    @property
    def pending(self) -> bool:
        return bool(self._tail)

    @property
    def complete(self) -> bool:
        return not self.fed or (self._inflate.eof and not self._tail)


class SourceStream(CountedStream):
    """The body of a GET.

    A connection that drops mid-body is resumed with a Range request from the last byte received,
    pinned to the same object with If-Match on its ETag, a bounded number of times with backoff. What
    came over the wire must equal Content-Length: a body that ends short is an error, never a silent
    success. Each read is one socket read, its wait bounded by the read timeout and the deadline.
    """

    def __init__(self, source: HttpSource, url: str, file: str, response: urllib3.BaseHTTPResponse,
                 deadline: Deadline | None = None) -> None:
        length = response.headers.get("Content-Length")
        super().__init__(int(length) if length and length.isdigit() else None)
        self._source = source
        self._url = url
        self._file = file
        self._response = response
        self._deadline = deadline
        self.resumes = 0
        self.wire_bytes = 0  # the body as sent (encoded, when it is), compared with Content-Length
        self.etag = response.headers.get("ETag")
        encoding = (response.headers.get("Content-Encoding") or "").strip().lower()
        self.encoded = encoding in _GZIP_ENCODINGS
        self._gunzip = _Gunzip() if self.encoded else None
        # Resuming needs a fixed length and identity; a transfer-encoded body cannot be resumed by offset.
        self._resumable = bool(self.etag and self.content_length is not None and not encoding)

    def _next_piece(self, size: int) -> bytes:
        while True:
            if self._gunzip is not None and self._gunzip.pending:
                out = self._decode(b"", size)
                if out:
                    return out
            try:
                set_read_timeout(self._response, self._wait())
                data = self._response.read1(size, decode_content=False)
            except (ProtocolError, HTTPError, OSError) as exc:
                if self._deadline is not None and self._deadline.seconds_left() < 0.1:  # the wait ran out
                    raise self._deadline.stop(f"reading the {self._file} file, after {self.bytes_read} bytes",
                                              {"file": self._file, "bytes_done": self.bytes_read}) from None
                self._resume(exc)
                continue
            if not data:
                if self.content_length is not None and self.wire_bytes < self.content_length:
                    self._resume(None)  # ended early without an error: same as a drop
                    continue
                if self._gunzip is not None and not self._gunzip.complete:
                    raise SourceError(f"the {self._file} file's gzip-encoded body ended without its gzip "
                                      f"trailer after {self.wire_bytes} bytes: it is truncated", self._file)
                return b""
            self.wire_bytes += len(data)
            if self._gunzip is None:
                return data
            out = self._decode(data, size)
            if out:
                return out

    def _wait(self) -> float:
        if self._deadline is not None and self._deadline.expired():
            raise self._deadline.stop(f"reading the {self._file} file, after {self.bytes_read} bytes",
                                      {"file": self._file, "bytes_done": self.bytes_read})
        return self._source.read_wait(self._deadline)

    def _decode(self, data: bytes, size: int) -> bytes:
        assert self._gunzip is not None
        try:
            return self._gunzip.decode(data, size)
        except zlib.error:
            raise SourceError(f"the {self._file} file's gzip-encoded body is corrupt after {self.wire_bytes} "
                              "bytes", self._file) from None

    def release(self) -> None:
        finish(self._response)

    def _resume(self, cause: Exception | None) -> None:
        timed_out = isinstance(cause, Urllib3Timeout | TimeoutError)
        reason = type(cause).__name__ if cause else "body ended early"
        if not self._resumable or self.resumes >= self._source.resume_attempts:
            why = "" if self._resumable else ", and the server gave no ETag and length to resume by"
            raise SourceError(f"the {self._file} file's download broke off after {self.wire_bytes} of "
                              f"{self.content_length} bytes ({reason}{why})", self._file,
                              timed_out=timed_out) from None
        self.resumes += 1
        logger.warning("resuming download", extra={"file": self._file, "offset": self.wire_bytes,
                                                    "attempt": self.resumes, "reason": reason})
        finish(self._response)
        pause = self._source.backoff * 2 ** (self.resumes - 1)
        if self._deadline is not None and self._deadline.seconds_left() <= pause:
            raise self._deadline.stop(f"about to resume the {self._file} file's download",
                                      {"file": self._file, "bytes_done": self.bytes_read})
        time.sleep(pause)
        assert self.etag is not None
        response = self._source._get(self._url, self._file,
                                     {"Range": f"bytes={self.wire_bytes}-", "If-Match": self.etag},
                                     self._deadline)
        expected = f"bytes {self.wire_bytes}-{self.content_length - 1}/{self.content_length}" \
            if self.content_length else ""
        if response.status != 206 or response.headers.get("Content-Range") != expected:
            finish(response)
            raise SourceError(f"the {self._file} file's download broke off after {self.wire_bytes} bytes "
                              f"and the server would not resume it (HTTP {response.status})", self._file)
        if response.headers.get("ETag") not in (None, self.etag):
            finish(response)
            raise SourceError(f"the {self._file} file changed while being read", self._file)
        self._response = response
