"""Reading the staged files from their presigned URLs over HTTP, streamed, never buffered whole.

Errors never carry the URL itself (its query string is a credential); they name the file instead
("data" or "metadata") and, where S3 said why, S3's error code.
"""

from __future__ import annotations

import io
import logging
import re
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import urllib3
from aws_lambda_powertools import Logger
from urllib3.exceptions import HTTPError, MaxRetryError, NewConnectionError, ProtocolError
from urllib3.exceptions import TimeoutError as Urllib3Timeout

from transforms import SERVICE_NAME
from transforms.errors import SourceError
from transforms.redact import scrub

CHUNK_SIZE = 1024 * 1024
_S3_CODE = re.compile(rb"<Code>([A-Za-z0-9]+)</Code>")


class _ScrubUrls(logging.Filter):
    """urllib3 logs each retry with the full URL: a presigned URL's signature must not reach a log."""

    def filter(self, record: logging.LogRecord) -> bool:
        record.msg, record.args = scrub(record.getMessage()), None
        return True


logging.getLogger("urllib3.connectionpool").addFilter(_ScrubUrls())
logger = Logger(service=SERVICE_NAME, child=True)


class HttpSource:
    """A connection pool with bounded timeouts; one per warm Lambda container."""

    def __init__(self, connect_timeout: float = 10.0, read_timeout: float = 60.0,
                 resume_attempts: int = 5, backoff: float = 0.5) -> None:
        self.resume_attempts = resume_attempts
        self.backoff = backoff
        self._pool = urllib3.PoolManager(
            maxsize=32,  # kept per host for the ranged download's connections (settings.MAX_CONNECTIONS)
            timeout=urllib3.Timeout(connect=connect_timeout, read=read_timeout),
            # Connection failures are retried; a GET that got an answer is not, and a presigned URL
            # never redirects, so a redirect is an error rather than a hop to somewhere unvetted.
            retries=urllib3.Retry(total=2, connect=2, read=0, status=0, redirect=0,
                                  backoff_factor=0.5, raise_on_redirect=False),
        )

    @contextmanager
    def open(self, url: str, file: str) -> Iterator[SourceStream]:
        """Start a streaming GET; the body is read through the yielded stream."""
        response = self._get(url, file, {})
        stream = SourceStream(self, url, file, response)
        try:
            yield stream
        finally:
            stream.release()

    def _get(self, url: str, file: str, headers: dict[str, str]) -> urllib3.BaseHTTPResponse:
        try:
            response = self._pool.request("GET", url, headers=headers, preload_content=False,
                                          redirect=False)
        except HTTPError as exc:
            # Retries wrap the last cause; look through them to tell a timeout from a refusal.
            cause = exc.reason if isinstance(exc, MaxRetryError) and exc.reason else exc
            if isinstance(cause, Urllib3Timeout) and not isinstance(cause, NewConnectionError):
                raise SourceError(f"timed out waiting for the {file} file's URL to answer", file,
                                  timed_out=True) from None
            raise SourceError(f"the {file} file's URL could not be reached ({type(cause).__name__})",
                              file) from None
        if response.status >= 300:
            try:
                raise _status_error(response, file)
            finally:
                response.release_conn()
        return response

    def size(self, url: str, file: str) -> int | None:
        """The file's size without downloading it: a presigned GET URL does not allow HEAD (the method
        is part of the signature), so ask for its first byte and read the total from Content-Range."""
        response = self._get(url, file, {"Range": "bytes=0-0"})
        try:
            total = (response.headers.get("Content-Range") or "").rpartition("/")[2]
            if response.status == 206 and total.isdigit():
                return int(total)
            length = response.headers.get("Content-Length")  # a server that ignored the range
            return int(length) if response.status == 200 and length and length.isdigit() else None
        finally:
            response.drain_conn() if response.status == 206 else response.close()
            response.release_conn()

    def fetch(self, url: str, file: str, limit: int) -> bytes:
        """Read a small file whole (the metadata); refuse one larger than ``limit`` bytes."""
        with self.open(url, file) as stream:
            data = bytearray()
            for chunk in stream.chunks(64 * 1024):
                data += chunk
                if len(data) > limit:
                    raise SourceError(f"the {file} file is larger than {limit} bytes", file)
            return bytes(data)


def _status_error(response: urllib3.BaseHTTPResponse, file: str) -> SourceError:
    """Turn an HTTP refusal into a message naming the file and S3's reason, if it gave one."""
    status = response.status
    try:
        body = response.read(4096, decode_content=True) or b""
    except HTTPError:
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
            piece = self._next_piece(min(wanted, CHUNK_SIZE))
            if not piece:
                break
            self.bytes_read += len(piece)
            if self.on_read is not None:
                self.on_read(len(piece))
            pieces.append(piece)
            wanted -= len(piece)
        return pieces[0] if len(pieces) == 1 else b"".join(pieces)

    def chunks(self, size: int = CHUNK_SIZE) -> Iterator[bytes]:
        while True:
            chunk = self.read(size)
            if not chunk:
                return
            yield chunk


class SourceStream(CountedStream):
    """The body of a GET.

    A connection that drops mid-body is resumed with a Range request from the last byte received,
    pinned to the same object with If-Match on its ETag, a bounded number of times with backoff. The
    total must equal Content-Length: a body that ends short is an error, never a silent success.
    """

    def __init__(self, source: HttpSource, url: str, file: str, response: urllib3.BaseHTTPResponse) -> None:
        length = response.headers.get("Content-Length")
        super().__init__(int(length) if length and length.isdigit() else None)
        self._source = source
        self._url = url
        self._file = file
        self._response = response
        self.resumes = 0
        self.etag = response.headers.get("ETag")
        # Resuming needs a fixed length and identity; a transfer-encoded body cannot be resumed by offset.
        self._resumable = bool(self.etag and self.content_length is not None
                               and not response.headers.get("Content-Encoding"))

    def _next_piece(self, size: int) -> bytes:
        while True:
            try:
                data = self._response.read(size, decode_content=True)
            except (ProtocolError, HTTPError) as exc:
                self._resume(exc)
                continue
            if not data and self.content_length is not None and self.bytes_read < self.content_length:
                self._resume(None)  # ended early without an error: same as a drop
                continue
            return data

    def release(self) -> None:
        self._response.release_conn()

    def _resume(self, cause: Exception | None) -> None:
        timed_out = isinstance(cause, Urllib3Timeout)
        reason = type(cause).__name__ if cause else "body ended early"
        if not self._resumable or self.resumes >= self._source.resume_attempts:
            why = "" if self._resumable else ", and the server gave no ETag and length to resume by"
            raise SourceError(f"the {self._file} file's download broke off after {self.bytes_read} of "
                              f"{self.content_length} bytes ({reason}{why})", self._file,
                              timed_out=timed_out) from None
        self.resumes += 1
        logger.warning("resuming download", extra={"file": self._file, "offset": self.bytes_read,
                                                    "attempt": self.resumes, "reason": reason})
        self._response.release_conn()
        time.sleep(self._source.backoff * 2 ** (self.resumes - 1))
        assert self.etag is not None
        response = self._source._get(self._url, self._file,
                                     {"Range": f"bytes={self.bytes_read}-", "If-Match": self.etag})
        expected = f"bytes {self.bytes_read}-{self.content_length - 1}/{self.content_length}" \
            if self.content_length else ""
        if response.status != 206 or response.headers.get("Content-Range") != expected:
            response.release_conn()
            raise SourceError(f"the {self._file} file's download broke off after {self.bytes_read} bytes "
                              f"and the server would not resume it (HTTP {response.status})", self._file)
        if response.headers.get("ETag") not in (None, self.etag):
            response.release_conn()
            raise SourceError(f"the {self._file} file changed while being read", self._file)
        self._response = response
