"""A byte window of the data file, read over several connections, every request pinned to one ETag.

The ranged download (``transforms.sources.ranged.RangedStream``) already reads a file as consecutive
ranges over a thread pool, resumes each range from its last byte, bounds every wait by the read timeout
and the deadline, and pins every range with ``If-Match``. A range function needs exactly that for the
bytes ``[start, stop)`` of the file, pinned to the ETag the plan read (not to its own first answer):
``PinnedWindow`` is that stream with its offsets moved by ``start``.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import urllib3

from transforms.errors import SourceError
from transforms.fanout.errors import SourceChanged
from transforms.progress import Deadline
from transforms.sources.http import HttpSource
from transforms.sources.ranged import RangedStream


class PinnedWindow(RangedStream):
    """Bytes ``[start, stop)`` of a ``total``-byte object whose ETag must stay ``etag``."""

    def __init__(self, http: HttpSource, url: str, *, etag: str, total: int, start: int, stop: int,
                 connections: int, range_size: int, deadline: Deadline | None = None) -> None:
        self._origin = start
        self._total = total
        super().__init__(http, url, "data", None, etag=etag, total=stop - start,  # type: ignore[arg-type]
                         connections=connections, range_size=range_size, deadline=deadline)

    def _request(self, start: int, end: int) -> urllib3.BaseHTTPResponse:
        first, last = self._origin + start, self._origin + end
        response = self._http._get(self._url, self._file,
                                   {"Range": f"bytes={first}-{last}", "If-Match": self.etag}, self._deadline)
        if response.headers.get("ETag") not in (None, self.etag):  # a server that ignored If-Match
            response.close()
            response.release_conn()
            raise SourceError(f"the {self._file} file changed while being read", self._file,
                              upstream_status=412)
        if response.status != 206 or response.headers.get("Content-Range") != \
                f"bytes {first}-{last}/{self._total}":
            response.close()
            response.release_conn()
            raise SourceError(f"the {self._file} file's server did not serve bytes {first}-{last} as asked "
                              f"(HTTP {response.status})", self._file)
        return response


@contextmanager
def open_window(http: HttpSource, url: str, *, etag: str, total: int, start: int, stop: int,
                connections: int, range_size: int,
                deadline: Deadline | None = None) -> Iterator[PinnedWindow]:
    """The window's stream; a 412 (the object's ETag changed since the plan) becomes ``SourceChanged``."""
    window = PinnedWindow(http, url, etag=etag, total=total, start=start, stop=stop,
                          connections=connections, range_size=range_size, deadline=deadline)
    try:
        with changed_source():
            yield window
    finally:
        window.release()


@contextmanager
def changed_source() -> Iterator[None]:
    try:
        yield
    except SourceError as exc:
        if exc.upstream_status == 412 and not isinstance(exc, SourceChanged):
            raise SourceChanged("the data file changed while the job ran (its ETag no longer matches the one "
                                "the plan read): every range must read the same file, so the job fails"
                                ) from None
        raise
