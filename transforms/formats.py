"""Output formats chosen by the target key's extension: a registry, so new formats slot in.

Each format is a function that copies a source stream into a sink and returns the number of data
records it wrote. The pipeline knows nothing of any format; a format knows nothing of S3 or HTTP
beyond ``chunks()`` on the source and ``write()`` on the sink. A format must not close the sink:
the pipeline decides whether the object is completed or aborted.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any, BinaryIO, Protocol

from smart_open.compression import compression_wrapper

from transforms.layout import Layout
from transforms.records import RecordCounter


class Source(Protocol):
    def chunks(self) -> Iterable[bytes]: ...


@dataclass(frozen=True)
class WriteOptions:
    """Per-job choices a format may consult."""

    csv_header: bool = True
    gzip_level: int = 6


WriteFunction = Callable[[Source, BinaryIO, Layout, WriteOptions], int]


@dataclass(frozen=True)
class Format:
    name: str
    suffixes: tuple[str, ...]
    content_type: str
    write: WriteFunction


def copy_csv(source: Source, sink: BinaryIO, layout: Layout, options: WriteOptions) -> int:
    """Header row from the layout (unless turned off), then the data bytes exactly as staged."""
    if options.csv_header:
        sink.write(layout.header_line())
    counter = RecordCounter()
    for chunk in source.chunks():
        counter.feed(chunk)
        sink.write(chunk)
    return counter.records


def _compressed_csv(extension: str, level_kwargs: Callable[[WriteOptions], dict[str, Any]]) -> WriteFunction:
    """CSV through one of smart_open's compressors (chosen, like smart_open does, by extension)."""

    def write(source: Source, sink: BinaryIO, layout: Layout, options: WriteOptions) -> int:
        stream = compression_wrapper(sink, "wb", compression=extension,
                                     compression_kwargs=level_kwargs(options))
        records = copy_csv(source, stream, layout, options)
        stream.close()  # writes the compressor's trailer; the sink itself stays open
        return records

    return write


_REGISTRY: list[Format] = []
DEFAULT_FORMAT = Format("csv", (".csv",), "text/csv; charset=utf-8", copy_csv)


def register(fmt: Format) -> None:
    """Add a format; the longest matching suffix wins, so ``.csv.gz`` beats ``.gz``."""
    _REGISTRY.append(fmt)


def format_for_key(key: str) -> Format:
    """The format a key's extension asks for; an unknown extension is passed through as CSV."""
    lowered = key.lower()
    matches = [(len(suffix), fmt) for fmt in _REGISTRY for suffix in fmt.suffixes
               if lowered.endswith(suffix)]
    return max(matches, key=lambda match: match[0])[1] if matches else DEFAULT_FORMAT


def registered_formats() -> list[Format]:
    return list(_REGISTRY)


register(DEFAULT_FORMAT)
register(Format("csv.gz", (".csv.gz", ".gz"), "application/gzip",
                _compressed_csv(".gz", lambda o: {"compresslevel": o.gzip_level})))
register(Format("csv.bz2", (".csv.bz2", ".bz2"), "application/x-bzip2",
                _compressed_csv(".bz2", lambda o: {"compresslevel": 9})))
register(Format("csv.zst", (".csv.zst", ".zst"), "application/zstd",
                _compressed_csv(".zst", lambda o: {"level": 3})))
