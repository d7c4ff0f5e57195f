"""Reading the staged files from their presigned URLs over HTTP, streamed, never buffered whole.

Errors never carry the URL itself (its query string is a credential); they name the file instead
("data" or "metadata") and, where S3 said why, S3's error code.
"""

from __future__ import annotations

import io
import logging
import re
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import urllib3
from urllib3.exceptions import HTTPError, MaxRetryError, NewConnectionError, ProtocolError
from urllib3.exceptions import TimeoutError as Urllib3Timeout

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


class HttpSource:
    """A connection pool with bounded timeouts; one per warm Lambda container."""

    def __init__(self, connect_timeout: float = 10.0, read_timeout: float = 60.0) -> None:
        self._pool = urllib3.PoolManager(
            timeout=urllib3.Timeout(connect=connect_timeout, read=read_timeout),
            # Connection failures are retried; a GET that got an answer is not, and a presigned URL
            # never redirects, so a redirect is an error rather than a hop to somewhere unvetted.
            retries=urllib3.Retry(total=2, connect=2, read=0, status=0, redirect=0,
                                  backoff_factor=0.5, raise_on_redirect=False),
        )

    @contextmanager
    def open(self, url: str, file: str) -> Iterator[SourceStream]:
        """Start a streaming GET; the body is read through the yielded stream."""
        try:
            response = self._pool.request("GET", url, preload_content=False, redirect=False)
        except HTTPError as exc:
            # Retries wrap the last cause; look through them to tell a timeout from a refusal.
            cause = exc.reason if isinstance(exc, MaxRetryError) and exc.reason else exc
            if isinstance(cause, Urllib3Timeout) and not isinstance(cause, NewConnectionError):
                raise SourceError(f"timed out waiting for the {file} file's URL to answer", file,
                                  timed_out=True) from None
            raise SourceError(f"the {file} file's URL could not be reached ({type(cause).__name__})",
                              file) from None
        try:
            if response.status >= 300:
                raise _status_error(response, file)
            yield SourceStream(response, file)
        finally:
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
    if status in (401, 403):
        what = "access was refused; the presigned URL may have expired"
    elif status == 404:
        what = "it was not found"
    elif 300 <= status < 400:
        what = "the URL redirected elsewhere, which a presigned URL never does"
    else:
        what = "the server failed"
    return SourceError(f"the {file} file could not be fetched: HTTP {status}{reason}, {what}", file,
                       upstream_status=status)


class SourceStream(io.RawIOBase):
    """The body of a GET, counted as it is read, as chunks or as a file (pyarrow reads it that way)."""

    def __init__(self, response: urllib3.BaseHTTPResponse, file: str) -> None:
        super().__init__()
        self._response = response
        self._file = file
        self.bytes_read = 0
        length = response.headers.get("Content-Length")
        self.content_length = int(length) if length and length.isdigit() else None

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        data = self.read(len(buffer))
        buffer[: len(data)] = data
        return len(data)

    def read(self, size: int = -1) -> bytes:
        """Read up to ``size`` bytes; a body shorter than Content-Length is an error, never an end."""
        try:
            data = self._response.read(None if size is None or size < 0 else size, decode_content=True)
        except Urllib3Timeout:
            raise SourceError(f"timed out reading the {self._file} file", self._file,
                              timed_out=True) from None
        except (ProtocolError, HTTPError) as exc:
            raise SourceError(f"the {self._file} file's download broke off after {self.bytes_read} "
                              f"bytes ({type(exc).__name__})", self._file) from None
        self.bytes_read += len(data)
        return data

    def chunks(self, size: int = CHUNK_SIZE) -> Iterator[bytes]:
        while True:
            chunk = self.read(size)
            if not chunk:
                return
            yield chunk
