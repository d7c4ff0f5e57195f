"""Output formats chosen by the target key's extension: a registry, so new formats slot in.

Each format is a function that copies a source stream into a sink and reports what it wrote. The
pipeline knows nothing of any format; a format knows nothing of S3 or HTTP beyond ``read``/``chunks``
on the source and ``write`` on the sink. A format must not close the sink: the pipeline decides
whether the object is completed or aborted. Columnar formats live in ``columnar`` and are imported
only when a key asks for one, so a CSV run never loads pyarrow.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any, BinaryIO, Protocol

from transforms.ci360.layout import Layout
from transforms.formats.parallel_gzip import ParallelGzipWriter
from transforms.formats.records import RecordCounter
from transforms.formats.tables import CSV_TABLE, JSON_TABLE, ORC_TABLE, PARQUET_TABLE, TableFormat
from transforms.memory import return_free_pages
from transforms.schema.columns import TypedSchema


class Source(Protocol):
    def read(self, size: int = -1) -> bytes: ...

    def chunks(self, size: int = ...) -> Iterator[bytes]:
        """The stream as it arrives, each piece at most ``size`` bytes (the source's default if not given)."""


@dataclass(frozen=True)
class WriteOptions:
    """Per-job choices a format may consult."""

    csv_header: bool = True
    gzip_level: int = 1
    compression: str | None = None  # the columnar codec; None means the format's default
    on_bad_value: str = "fail"  # or "null": bad values become nulls, counted per column
    row_group_bytes: int = 32 * 1024 * 1024  # Arrow memory: about 15 MB of snappy Parquet


@dataclass(frozen=True)
class WriteContext:
    layout: Layout
    schema: TypedSchema
    options: WriteOptions


@dataclass
class WriteReport:
    rows: int
    bad_values: dict[str, int] = field(default_factory=dict)
    # CSV only: records with a line break inside a quoted field, which Athena's CSV tables split
    records_with_line_breaks: int | None = None


WriteFunction = Callable[[Source, BinaryIO, WriteContext], WriteReport]


@dataclass(frozen=True)
class Format:
    name: str
    suffixes: tuple[str, ...]
    content_type: str
    write: WriteFunction
    table: TableFormat  # how Athena reads it (the catalog renders this as DDL or Glue)
    typed: bool = False  # whether values are converted by the schema (and the result reports it)
    # The object is the source's bytes as they are, after a header: its size is known before the
    # first byte (so the sink plans its parts from it, and refuses what S3 cannot hold).
    keeps_bytes: bool = False


# The download's pieces are freed in another order than they were allocated: every so many bytes, the
# holes left between live blocks go back (transforms.memory). Measured at 4x, two runs each: peak RSS
# 133-143 MB without, 129-134 MB trimming every 128 MiB (1x: 117-123 MB either way); every 64 MiB was as
# level but slower on two cores (4.7-4.8 s against 4.0-4.5 s).
PASSTHROUGH_TRIM_BYTES = 128 * 1024 * 1024


def pass_through(source: Source, sink: BinaryIO, feed: Callable[[bytes], None]) -> None:
    """Every chunk to the sink as it came, each shown to ``feed`` (a record counter) first."""
    since_trim = 0
    for chunk in source.chunks():
        feed(chunk)
        sink.write(chunk)
        since_trim += len(chunk)
        if since_trim >= PASSTHROUGH_TRIM_BYTES:
            since_trim = 0
            return_free_pages()


def copy_csv(source: Source, sink: BinaryIO, ctx: WriteContext) -> WriteReport:
    """Header row from the layout (unless turned off), then the data bytes exactly as staged."""
    if ctx.options.csv_header:
        sink.write(ctx.layout.header_line())
    counter = RecordCounter()
    pass_through(source, sink, counter.feed)
    counter.check_complete()
    return WriteReport(counter.records, records_with_line_breaks=counter.records_with_line_breaks)


def compressed(extension: str, inner: WriteFunction,
               level: Callable[[WriteOptions], dict[str, Any]] = lambda _: {}) -> WriteFunction:
    """Any format through one of smart_open's compressors, chosen like smart_open does: by extension."""

    def write(source: Source, sink: BinaryIO, ctx: WriteContext) -> WriteReport:
        # Imported here: smart_open's package loads boto3 and every transport, which the catalog and
        # the CLI's ddl (both read this registry) never need.
        from smart_open.compression import compression_wrapper

        stream = compression_wrapper(sink, "wb", compression=extension, compression_kwargs=level(ctx.options))
        report = inner(source, stream, ctx)
        stream.close()  # writes the compressor's trailer; the sink itself stays open
        return report

    return write


def gzipped(inner: WriteFunction) -> WriteFunction:
    """Gzip on every core (``parallel_gzip``): smart_open's gzip, like Python's, deflates on one."""

    def write(source: Source, sink: BinaryIO, ctx: WriteContext) -> WriteReport:
        stream = ParallelGzipWriter(sink, level=ctx.options.gzip_level)
        report = inner(source, stream, ctx)  # type: ignore[arg-type]
        stream.close()
        return report

    return write


def lazy(module: str, function: str) -> WriteFunction:
    """A write function imported on first use (pyarrow costs a Lambda cold start ~1 s)."""

    def write(source: Source, sink: BinaryIO, ctx: WriteContext) -> WriteReport:
        return getattr(importlib.import_module(module), function)(source, sink, ctx)

    return write


DEFAULT_FORMAT = Format("csv", (".csv",), "text/csv; charset=utf-8", copy_csv, CSV_TABLE, keeps_bytes=True)


class Registry:
    """Formats by suffix. The connector uses the one below (``register``, ``format_for_key``); a test
    or an extension can build its own, starting from a copy of it, without touching the shared one."""

    def __init__(self, formats: list[Format] | None = None) -> None:
        self._formats: list[Format] = list(formats or [])

    def register(self, fmt: Format) -> None:
        """Add a format; the longest matching suffix wins, so ``.csv.gz`` beats ``.gz``."""
        self._formats.append(fmt)

    def format_for_key(self, key: str) -> Format:
        """The format a key's extension asks for; an unknown extension is passed through as CSV."""
        lowered = key.lower()
        matches = [(len(suffix), fmt) for fmt in self._formats for suffix in fmt.suffixes
                   if lowered.endswith(suffix)]
        return max(matches, key=lambda match: match[0])[1] if matches else DEFAULT_FORMAT

    def format_named(self, name: str) -> Format:
        for fmt in self._formats:
            if fmt.name == name:
                return fmt
        raise KeyError(name)

    def formats(self) -> list[Format]:
        return list(self._formats)


REGISTRY = Registry()
register = REGISTRY.register
format_for_key = REGISTRY.format_for_key
format_named = REGISTRY.format_named
registered_formats = REGISTRY.formats


_jsonl = lazy("transforms.formats.columnar", "write_jsonl")
register(DEFAULT_FORMAT)
register(Format("csv.gz", (".csv.gz", ".gz"), "application/gzip", gzipped(copy_csv), CSV_TABLE))
register(Format("csv.bz2", (".csv.bz2", ".bz2"), "application/x-bzip2",
                compressed(".bz2", copy_csv, lambda _: {"compresslevel": 9}), CSV_TABLE))
register(Format("csv.zst", (".csv.zst", ".zst"), "application/zstd",
                compressed(".zst", copy_csv, lambda _: {"level": 3}), CSV_TABLE))
register(Format("parquet", (".parquet", ".pq"), "application/vnd.apache.parquet",
                lazy("transforms.formats.columnar", "write_parquet"), PARQUET_TABLE, typed=True))
register(Format("orc", (".orc",), "application/vnd.apache.orc",
                lazy("transforms.formats.columnar", "write_orc"), ORC_TABLE, typed=True))
register(Format("jsonl", (".jsonl", ".ndjson", ".json"), "application/x-ndjson", _jsonl, JSON_TABLE,
                typed=True))
register(Format("jsonl.gz", (".jsonl.gz", ".ndjson.gz", ".json.gz"), "application/gzip",
                gzipped(_jsonl), JSON_TABLE, typed=True))
