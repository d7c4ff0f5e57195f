"""Typed output formats for Athena: Parquet, ORC and JSON Lines, written while the CSV streams in.

Batches from the CSV reader are small (one per CSV block); they are gathered into row groups of
``row_group_bytes`` before writing, since Athena scans tens-of-MB row groups far better than
thousands of tiny ones. Memory is bounded by one row group plus the S3 parts in flight.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Iterator
from typing import Any, BinaryIO

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.orc as orc
import pyarrow.parquet as pq

from transforms.errors import BadValueError
from transforms.formats import Source, WriteContext, WriteReport
from transforms.typed_csv import TypedCsvReader

PARQUET_CODECS = {"snappy": "snappy", "zstd": "zstd", "gzip": "gzip", "none": "none"}
ORC_CODECS = {"snappy": "snappy", "zstd": "zstd", "gzip": "zlib", "none": "uncompressed"}


def _row_groups(reader: TypedCsvReader, target_bytes: int) -> Iterator[pa.Table]:
    pending: list[pa.RecordBatch] = []
    size = 0
    for batch in reader:
        pending.append(batch)
        size += batch.nbytes
        if size >= target_bytes:
            yield pa.Table.from_batches(pending, reader.arrow_schema)
            pending, size = [], 0
    if pending:
        yield pa.Table.from_batches(pending, reader.arrow_schema)


def _reader(source: Source, ctx: WriteContext) -> TypedCsvReader:
    return TypedCsvReader(source, ctx.schema, ctx.options.on_bad_value)  # type: ignore[arg-type]


def write_parquet(source: Source, sink: BinaryIO, ctx: WriteContext) -> WriteReport:
    """Parquet as Athena engine v3 reads it: INT64 MILLIS timestamps (never INT96), DATE, DECIMAL."""
    reader = _reader(source, ctx)
    writer = pq.ParquetWriter(
        sink, reader.arrow_schema,
        compression=PARQUET_CODECS[ctx.options.compression or "snappy"],
        coerce_timestamps="ms", allow_truncated_timestamps=True, use_deprecated_int96_timestamps=False,
    )
    for table in _row_groups(reader, ctx.options.row_group_bytes):
        writer.write_table(table, row_group_size=table.num_rows)
    writer.close()  # writes the footer; ParquetWriter does not close a sink it was handed
    return WriteReport(reader.rows, reader.bad_values)


_ORC_UNREADABLE = ("ORC timestamp: Athena's ORC reader cannot read a time before 1970 with a fraction "
                   "of a second as pyarrow writes it; land .parquet, or set on_bad_value=null")


def _orc_readable(table: pa.Table, rows_before: int, reader: TypedCsvReader, policy: str) -> pa.Table:
    """Refuse (or null, by the bad-value policy) timestamps that Java ORC readers would reject.

    ORC stores seconds and nanoseconds apart; pyarrow's writer splits a time before 1970 toward
    zero, so a fraction of a second lands as negative nanoseconds, and the Java readers (Trino's,
    Athena's) refuse the whole file ("nanos > 999999999 or < 0"). Whole seconds are stored right.
    """
    for index, field in enumerate(table.schema):
        if not pa.types.is_timestamp(field.type):
            continue
        column = table.column(index)
        whole_seconds = pc.cast(pc.cast(column, pa.timestamp("s"), safe=False), field.type)
        before_1970 = pc.less(column.cast(pa.int64()), 0)
        unreadable = pc.fill_null(pc.and_(before_1970, pc.not_equal(column, whole_seconds)), False)
        count = pc.sum(unreadable).as_py() or 0
        if not count:
            continue
        if policy != "null":
            first = pc.index(unreadable, True).as_py()
            value = column[first].as_py().isoformat(sep=" ", timespec="milliseconds")
            raise BadValueError(rows_before + first + 1, field.name, value, _ORC_UNREADABLE)
        reader.bad_values[field.name] = reader.bad_values.get(field.name, 0) + count
        table = table.set_column(index, field, pc.if_else(unreadable, pa.scalar(None, field.type), column))
    return table


def write_orc(source: Source, sink: BinaryIO, ctx: WriteContext) -> WriteReport:
    reader = _reader(source, ctx)
    writer = orc.ORCWriter(sink, compression=ORC_CODECS[ctx.options.compression or "snappy"],
                           stripe_size=64 * 1024 * 1024)
    wrote = False
    rows = 0
    for table in _row_groups(reader, ctx.options.row_group_bytes):
        writer.write(_orc_readable(table, rows, reader, ctx.options.on_bad_value))
        rows += table.num_rows
        wrote = True
    if not wrote:
        writer.write(reader.arrow_schema.empty_table())  # an empty audience still carries its schema
    writer.close()
    return WriteReport(reader.rows, reader.bad_values)


def _json_value(type_: pa.DataType) -> Callable[[Any], str]:
    """How one column's values are spelled in JSON for Athena's JSON SerDe (null is handled apart)."""
    if pa.types.is_string(type_):
        return lambda v: json.dumps(v, ensure_ascii=False)
    if pa.types.is_boolean(type_):
        return lambda v: "true" if v else "false"
    if pa.types.is_integer(type_) or pa.types.is_decimal(type_):
        return str  # a Decimal's str is an exact JSON number
    if pa.types.is_floating(type_):
        return lambda v: repr(v) if math.isfinite(v) else "null"
    if pa.types.is_timestamp(type_):
        return lambda v: '"' + v.isoformat(sep=" ", timespec="milliseconds") + '"'
    return lambda v: '"' + v.isoformat() + '"'  # date


def write_jsonl(source: Source, sink: BinaryIO, ctx: WriteContext) -> WriteReport:
    """One object per line with typed values and nulls as null, names as in the Glue schema."""
    reader = _reader(source, ctx)
    keys = [json.dumps(name) + ":" for name in reader.arrow_schema.names]
    spell = [_json_value(field.type) for field in reader.arrow_schema]
    for batch in reader:
        columns = [column.to_pylist() for column in batch.columns]
        lines = []
        for row in zip(*columns, strict=True):
            parts = [key + ("null" if value is None else fmt(value))
                     for key, fmt, value in zip(keys, spell, row, strict=True)]
            lines.append("{" + ",".join(parts) + "}\n")
        sink.write("".join(lines).encode("utf-8"))
    return WriteReport(reader.rows, reader.bad_values)
