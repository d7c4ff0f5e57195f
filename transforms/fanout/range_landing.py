"""One range function: land the bytes ``[start, end)`` of the data file as a range object.

CSV family: the window's bytes pass through untouched (range 0 writes the header first), compressed
as the target's format compresses (gzip members, bzip2 and zstd streams concatenate), while the
record counts are kept for both possible start states (``RangeCounts``).

Typed formats: the range's own records (``RangeRecords``) go through the format's writer, so each range
object is a complete file (Parquet, ORC) or the JSON Lines of its records. Its start state is
speculated (0) or known (a redo); the manifest says which, and ``check_ranges`` decides.

A range's objects are named by the job and the index alone: a retried range overwrites them. The range
object is written before its manifest, so a manifest always describes a complete range object.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from contextlib import AbstractContextManager
from functools import partial
from typing import Any, BinaryIO

from aws_lambda_powertools import Logger

from transforms import SERVICE_NAME
from transforms.aws import SDK_ERRORS
from transforms.ci360.layout import parse_layout
from transforms.errors import BadValueError, UnprocessableError
from transforms.fanout.boundaries import RangeCounts
from transforms.fanout.errors import RangesIncomplete
from transforms.fanout.manifests import put_json
from transforms.fanout.naming import range_manifest, range_object
from transforms.fanout.region import RangeRecords
from transforms.fanout.stored_job import read_stored
from transforms.fanout.window import changed_source, open_window
from transforms.formats.registry import (
    Format,
    WriteContext,
    WriteFunction,
    WriteOptions,
    WriteReport,
    compressed,
    format_for_key,
    gzipped,
    pass_through,
)
from transforms.jobs.pipeline import encryption
from transforms.jobs.services import Services
from transforms.progress import Deadline, Progress, Snapshot
from transforms.schema.columns import build_schema
from transforms.settings import Settings
from transforms.sinks.s3 import S3MultipartSink, s3_failure

logger = Logger(service=SERVICE_NAME, child=True)

TAIL_RANGE_BYTES = 256 * 1024  # past its window, a range reads on only to the end of its last record

# How the one-function registry encodes each CSV-family format around its passthrough; a range uses the
# same encoders around a passthrough of its own (one that keeps counts for either start state and does
# not refuse a window that ends inside a quoted field, as the whole file's passthrough rightly does).
# The levels are the registry's (they change the size, never the decompressed bytes).
CSV_ENCODERS: dict[str, Callable[[WriteFunction], WriteFunction]] = {
    "csv": lambda inner: inner,
    "csv.gz": gzipped,
    "csv.bz2": lambda inner: compressed(".bz2", inner, lambda _: {"compresslevel": 9}),
    "csv.zst": lambda inner: compressed(".zst", inner, lambda _: {"level": 3}),
}


def _log_progress(snapshot: Snapshot) -> None:
    logger.info("progress", extra=snapshot.to_json())


def load_job(s3: Any, state: dict[str, Any]) -> tuple[Any, bytes]:
    """The job and the layout the plan stored (the state carries neither)."""
    found = read_stored(s3, state["job"]["bucket"], state["staging"])
    if found is None or found[1] is None:
        raise RangesIncomplete("the fan-out's job is missing from its staging folder (abandoned?)")
    return found  # type: ignore[return-value]


def _passthrough(counts: RangeCounts, header: bytes | None) -> WriteFunction:
    def write(source: Any, sink: BinaryIO, ctx: WriteContext) -> WriteReport:
        if header:
            sink.write(header)
        pass_through(source, sink, counts.feed)
        return WriteReport(0)

    return write


def land_range(state: dict[str, Any], item: dict[str, Any], settings: Settings, services: Services,
               deadline: Deadline | None = None) -> dict[str, Any]:
    """Land one range (``item``: index, start, end, and startState when known); returns a small summary."""
    started = time.monotonic()
    job, raw_layout = load_job(services.s3, state)
    layout = parse_layout(raw_layout, settings.max_columns)
    schema = build_schema(layout, job.column_types)
    fmt = format_for_key(job.key)
    index, start, end = int(item["index"]), int(item["start"]), int(item["end"])
    start_state = int(item.get("startState", 0))
    count = int(state["rangeCount"])
    size, etag = int(state["source"]["size"]), state["source"]["etag"]
    first, last = index == 0, index == count - 1
    ctx = WriteContext(layout, schema, WriteOptions(
        csv_header=job.csv_header, gzip_level=settings.gzip_level, compression=job.compression,
        on_bad_value=job.on_bad_value, row_group_bytes=settings.row_group_bytes))
    window = partial(open_window, services.http, job.data_url, etag=etag, total=size, deadline=deadline)
    key = range_object(state["staging"], index)
    sink = S3MultipartSink(services.s3, job.bucket, key, part_size=settings.part_size,
                           max_in_flight=settings.upload_concurrency,
                           extra_args={"ContentType": fmt.content_type, **encryption(settings)})
    manifest: dict[str, Any] = {"index": index, "start": start, "end": end, "startState": start_state}
    with window(start=start, stop=end, connections=settings.download_connections,
                range_size=settings.download_range_bytes) as head:
        head.on_read = Progress(head.content_length, _log_progress, deadline=deadline,
                                interval_s=settings.progress_interval_s)
        if fmt.typed:
            tail = None if last else partial(window, start=end, stop=size, connections=1,
                                             range_size=TAIL_RANGE_BYTES)
            manifest.update(_land_typed(fmt, head, tail, first, start_state, sink, ctx))
        else:
            counts = RangeCounts()
            header = layout.header_line() if first and job.csv_header else None
            with sink:
                CSV_ENCODERS[fmt.name](_passthrough(counts, header))(head, sink, ctx)
            manifest.update({"parity": counts.parity, "counts": counts.to_json(),
                             "lastByte": counts.last_byte, "bytesRead": head.bytes_read})
    if not manifest.get("unproven") and not manifest.get("error"):
        manifest.update(_landed(services.s3, job.bucket, key, sink))
    put_json(services.s3, job.bucket, range_manifest(state["staging"], index), manifest, encryption(settings))
    summary = {name: manifest.get(name) for name in ("index", "startState", "parity", "rows", "bytes")}
    for name in ("unproven", "error"):
        if manifest.get(name):
            summary[name] = manifest[name]
    logger.info("range landed", extra={**summary, "seconds": round(time.monotonic() - started, 3)})
    return summary


def _land_typed(fmt: Format, head: Any, tail: Callable[[], AbstractContextManager[Any]] | None, first: bool,
                start_state: int, sink: S3MultipartSink, ctx: WriteContext) -> dict[str, Any]:
    """Write the range's records; a failure that a wrong start state may explain (unproven quotes, a
    record that does not fit the layout, a bad value) is recorded, not raised: ``check_ranges`` raises
    it only once the start state is known to be right."""
    records = RangeRecords(head, tail, first=first, start_state=start_state)
    outcome: dict[str, Any] = {}
    try:
        with changed_source(), sink:
            report = fmt.write(records, sink, ctx)  # type: ignore[arg-type]
            if records.problem:
                raise _Unproven(records.problem)
        outcome.update({"rows": report.rows, "badValues": report.bad_values})
    except _Unproven as exc:
        outcome["unproven"] = str(exc)
    except UnprocessableError as exc:
        outcome.update({"unproven": records.problem} if records.problem else {"error": _error(exc)})
    finally:
        records.close()
    records.finish_window()  # an early stop left some of the window unread: its parity is still needed
    outcome.update({"parity": records.parity, "ownsRecords": records.owns_records,
                    "bytesRead": head.bytes_read + records.tail_bytes})
    return outcome


def _error(exc: UnprocessableError) -> dict[str, Any]:
    error: dict[str, Any] = {"code": exc.code, "message": exc.message, "details": exc.details}
    if isinstance(exc, BadValueError):  # its row is counted within the range: check_ranges makes it global
        error["badValue"] = {"row": exc.row, "column": exc.column}
    return error


class _Unproven(Exception):
    pass


def _landed(s3: Any, bucket: str, key: str, sink: S3MultipartSink) -> dict[str, Any]:
    """The range object as the finalizer will copy it: size, CRC32 (verified by S3 on arrival when
    ``verified``), and ETag (the copy is conditional on it: a later attempt's object is never mixed in)."""
    try:
        head = s3.head_object(Bucket=bucket, Key=key)
    except SDK_ERRORS as exc:
        raise s3_failure(exc, "read back the range object's ETag") from None
    if head["ContentLength"] != sink.bytes_written:
        raise RangesIncomplete(f"the range object {key} holds {head['ContentLength']} bytes, not the "
                               f"{sink.bytes_written} written")
    return {"bytes": sink.bytes_written, "crc32": sink.checksum_crc32, "verified": bool(sink.verified),
            "etag": head["ETag"]}
