"""Sources for the command line: local files (read, never written) as well as http(s) URLs.

``LocalSource`` offers the pipeline the same surface as ``HttpSource`` (``fetch`` for the metadata,
``open`` for the data stream), so a backfill from a file on the operator's machine runs through the
very same formats and S3 sink as a webhook does. http(s) URLs go to an ``HttpSource``; paths and
``file://`` URLs are opened from disk; ``-`` is standard input (data only: its length is unknown).
"""

from __future__ import annotations

import re
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import BinaryIO
from urllib.parse import urlsplit
from urllib.request import url2pathname

from transforms.errors import SourceError, ValidationError
from transforms.progress import Deadline
from transforms.sources.http import CountedStream, HttpSource, SourceStream, too_large

STDIN = "-"
_SCHEME = re.compile(r"([A-Za-z][A-Za-z0-9+.-]+)://")  # two letters at least: C:// is no scheme


def is_url(location: str) -> bool:
    return location.lower().startswith(("http://", "https://"))


def local_path(location: str, file: str) -> Path:
    """The path a location names: a plain path or a ``file://`` URL; other schemes are refused."""
    if location.lower().startswith("file://"):
        parts = urlsplit(location)
        if parts.netloc not in ("", "localhost"):
            raise ValidationError(f"the {file} file's file:// URL must name a local path (no host)",
                                  [{"field": file}])
        return Path(url2pathname(parts.path))
    scheme = _SCHEME.match(location)
    if scheme:
        raise ValidationError(f"the {file} file must be a local path, a file:// URL or an http(s) URL "
                              f"({scheme.group(1)}:// is not supported)", [{"field": file}])
    return Path(location)


class LocalStream(CountedStream):
    """A local file (or stdin), read the way the pipeline reads a presigned URL's body."""

    def __init__(self, raw: BinaryIO, content_length: int | None) -> None:
        super().__init__(content_length)
        self._raw = raw

    def _next_piece(self, size: int) -> bytes:
        return self._raw.read(size)


class LocalSource:
    """``HttpSource``'s surface over local files and http(s) URLs alike."""

    def __init__(self, http: HttpSource | None = None) -> None:
        self._http = http

    @property
    def http(self) -> HttpSource:
        if self._http is None:
            self._http = HttpSource()
        return self._http

    def fetch(self, url: str, file: str, limit: int, deadline: Deadline | None = None) -> bytes:
        """Read a small file whole (the metadata); refuse one larger than ``limit`` bytes."""
        if is_url(url):
            return self.http.fetch(url, file, limit, deadline=deadline)
        with self.open(url, file) as stream:
            data = stream.read(limit + 1)
        if len(data) > limit:
            raise too_large(file, limit)
        return data

    @contextmanager
    def open(self, url: str, file: str,
             deadline: Deadline | None = None) -> Iterator[SourceStream | LocalStream]:
        """A local file or stdin (no network wait to bound), or an http(s) URL within ``deadline``."""
        if is_url(url):
            with self.http.open(url, file, deadline=deadline) as stream:
                yield stream
            return
        if url == STDIN:
            yield LocalStream(sys.stdin.buffer, None)
            return
        path = local_path(url, file)
        try:
            raw = path.open("rb")
        except OSError as exc:
            raise SourceError(f"the {file} file {str(path)!r} cannot be read: {exc.strerror or exc}",
                              file) from None
        with raw:
            try:
                size: int | None = path.stat().st_size if path.is_file() else None
            except OSError:
                size = None
            yield LocalStream(raw, size)
