"""Typed output formats for Athena: Parquet, ORC and JSON Lines, written while the CSV streams in.

Batches from the CSV reader are small (one per CSV block); they are gathered into row groups of
``row_group_bytes`` before writing, since Athena scans tens-of-MB row groups far better than
thousands of tiny ones. Memory is bounded by two row groups (one being written while the next is
gathered) plus the S3 parts in flight; for ORC, by its writer's stripe and two tables of
``ORC_WRITE_BYTES`` (its stripes are sized by the writer, not by the tables it is handed).

Every core: the reader (``typed_csv``) parses and converts pieces of the CSV side by side on a pool and
hands them on in order; the Parquet/ORC encoder runs on a thread of its own while the next row group
is parsed and converted; JSON Lines are built by pyarrow compute kernels, batches side by side on a
pool. All of these release the GIL. One file has one encoder: Parquet and ORC writers take row groups
one at a time, so with more cores than two the encoder is what bounds those formats.
"""

from __future__ import annotations

import json
from collections import deque
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager, suppress
from functools import partial
from typing import Any, BinaryIO

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.orc as orc
import pyarrow.parquet as pq

from transforms.errors import BadValueError
from transforms.formats.registry import Source, WriteContext, WriteReport
from transforms.formats.typed_csv import TypedCsvReader
from transforms.memory import return_free_pages

# Python's pyarrow allocations in jemalloc too (the pool ``transforms.memory`` makes Arrow's default), which
# hands the pages of a row group written back 250 ms after it is freed (``memory.JEMALLOC_CONF``: the
# figures are there).
with suppress(NotImplementedError, pa.ArrowNotImplementedError):  # a build without jemalloc: the default
    pa.set_memory_pool(pa.jemalloc_memory_pool())

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


class _Background:
    """One write at a time on its own thread, so the next row group is read and converted meanwhile."""

    def __init__(self, pool: ThreadPoolExecutor) -> None:
        self._pool = pool
        self._pending: Future[Any] | None = None

    def submit(self, function: Callable[..., Any], *args: Any, **kwargs: Any) -> None:
        self.wait()
        self._pending = self._pool.submit(function, *args, **kwargs)

    def wait(self) -> None:
        pending, self._pending = self._pending, None
        if pending is not None:
            pending.result()
            return_free_pages()  # a row group's worth of blocks were freed: see transforms.memory


@contextmanager
def _background() -> Iterator[_Background]:
    pool = ThreadPoolExecutor(1, thread_name_prefix="columnar-write")
    try:
        yield _Background(pool)
    finally:
        pool.shutdown(wait=True, cancel_futures=True)  # never a write into a sink the caller aborts


# Bytes of CSV the reader parses as one task (``TypedCsvReader``'s ``block_size``), per format. Each task
# costs a parser call, a table and Python between them, so larger pieces cost less CPU per GB; each of
# the (cores + 2) pieces in flight holds its text and its columns. Measured side by side (bench/ranged.py,
# capped both ways, three rounds, issue 21): 2 MiB took .jsonl 8.1-8.5 s where 1 MiB took 8.9-10.1 (1 GiB,
# 2 cores; peak 303-317 MB against 276-281). .parquet gained 0-5%, within a round's noise, for 15-20 MB
# more peak, which on one core at 4x took it to 393-411 MB; .orc's peak passed 400 MB (394-425): both
# keep 1 MiB.
PIECE_BYTES = {"parquet": 1024 * 1024, "orc": 1024 * 1024, "jsonl": 2 * 1024 * 1024}


def _reader(source: Source, ctx: WriteContext, piece_bytes: int) -> TypedCsvReader:
    return TypedCsvReader(source, ctx.schema, ctx.options.on_bad_value,  # type: ignore[arg-type]
                          block_size=piece_bytes)


# Values sampled from the first row group to tell an id column (no value repeats) from others.
DICTIONARY_SAMPLE_ROWS = 65_536
DICTIONARY_MIN_SAMPLE = 1_024  # fewer values than this say nothing: such a file keeps every dictionary


def dictionary_columns(first: pa.Table) -> list[str] | bool:
    """The columns to dictionary-encode: all but those whose sampled values never repeat (ids).

    Arrow tries a dictionary on every column and falls back to plain values once the dictionary passes
    1 MiB, in every row group again. On a column of unique values (a UUID, an external id) that is pure
    cost: each row group hashes its first ~131,000 values, grows and zeroes the hash table (a quarter of
    the conversion's page faults on the bench's audience) and then writes those values twice, as a
    dictionary and as indices. Measured on the bench's 256 MiB (issue 21, ``bench/parquet_options.py``):
    the external id column encodes in 0.018 s instead of 0.103 s and is 7.4 MB instead of 9.4. Columns
    with repeats keep their dictionary even when it overflows (the part before the fall-back is smaller:
    the timestamps 9.8 MB with it, 13.3 without). Costs a ``count_distinct`` of 65,536 values per column,
    once per file (~5-40 ms per column)."""
    sample = first.slice(0, DICTIONARY_SAMPLE_ROWS)
    keep = []
    for name, column in zip(sample.column_names, sample.columns, strict=True):
        values = len(column) - column.null_count
        if values < DICTIONARY_MIN_SAMPLE or pc.count_distinct(column).as_py() < values:
            keep.append(name)
    return True if len(keep) == first.num_columns else keep


# A column without a dictionary is written uncompressed when the codec, tried on its sampled values, keeps
# more than this share of their bytes. Such values are random text: hex and base64 ids and hashes, whose
# 16 or 64 symbols an LZ77 codec without entropy coding (Snappy) barely shrinks. Measured on the bench's
# audience (issue 21, 256 MiB, lowest of three rounds): Snappy kept 89% of its UUID column and spent a
# third of the encoder's CPU on it (1.89 s per GB of CSV with it, 1.22 without), for an object 8% smaller
# (104 MB against 112). ZSTD and gzip, which have entropy coding, shrink hex to about half: under them
# such a column stays compressed. Columns with a dictionary are left to the codec (their pages are
# small: the values once, then bit-packed indices).
PLAIN_ABOVE_SHARE = 0.85
PLAIN_MIN_SAMPLE = 64 * 1024  # bytes of values below which a sample says nothing: the codec is kept


def _values_bytes(column: pa.Array) -> pa.Buffer | None:
    """The bytes of a column's values back to back (strings' text, numbers' fixed-width values), as
    Parquet's plain encoding holds them but for the lengths; None for a type with neither (booleans)."""
    if pa.types.is_string(column.type) or pa.types.is_binary(column.type):
        return _value_bytes(column)
    width = getattr(column.type, "byte_width", 0)
    if not width or pa.types.is_boolean(column.type):
        return None
    return column.buffers()[1].slice(column.offset * width, len(column) * width)


def compression_by_column(first: pa.Table, codec: str,
                          use_dictionary: list[str] | bool) -> str | dict[str, str]:
    """The codec for every column, but "none" for a column without a dictionary whose sampled values the
    codec would barely shrink (see ``PLAIN_ABOVE_SHARE``). Costs compressing up to 65,536 values of each
    such column once per file (a few ms)."""
    if codec == "none" or use_dictionary is True:
        return codec
    sample = first.slice(0, DICTIONARY_SAMPLE_ROWS)
    plain = []
    for name, column in zip(sample.column_names, sample.columns, strict=True):
        if name in use_dictionary:
            continue
        data = _values_bytes(column.combine_chunks())
        if data is None or data.size < PLAIN_MIN_SAMPLE:
            continue
        if pa.compress(data, codec=codec, asbytes=False).size > PLAIN_ABOVE_SHARE * data.size:
            plain.append(name)
    return {name: "none" if name in plain else codec for name in first.column_names} if plain else codec


def write_parquet(source: Source, sink: BinaryIO, ctx: WriteContext) -> WriteReport:
    """Parquet as Athena engine v3 reads it: INT64 MILLIS timestamps (never INT96), DATE, DECIMAL."""
    reader = _reader(source, ctx, PIECE_BYTES["parquet"])
    codec = PARQUET_CODECS[ctx.options.compression or "snappy"]

    def parquet_writer(first: pa.Table | None) -> pq.ParquetWriter:
        use_dictionary: list[str] | bool = True  # an empty audience: nothing to choose by
        compression: str | dict[str, str] = codec
        if first is not None:
            use_dictionary = dictionary_columns(first)
            compression = compression_by_column(first, codec, use_dictionary)
        return pq.ParquetWriter(
            sink, reader.arrow_schema, use_dictionary=use_dictionary, compression=compression,
            coerce_timestamps="ms", allow_truncated_timestamps=True, use_deprecated_int96_timestamps=False,
        )

    writer = None  # opened with the first row group, whose values choose dictionaries and codecs
    with _background() as background:
        for table in _row_groups(reader, ctx.options.row_group_bytes):
            if writer is None:
                writer = parquet_writer(table)
            background.submit(writer.write_table, table, row_group_size=table.num_rows)
        background.wait()
    if writer is None:  # an empty audience still carries its schema
        writer = parquet_writer(None)
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


# Arrow bytes handed to the ORC writer per call. Its stripes are its own (``stripe_size``: the writer
# buffers a stripe's encoded streams and flushes them when they reach it), so tables smaller than a
# stripe make stripes as large and the same rows (tests/unit/formats/test_orc_writes.py), and each table
# held while the last one is written, and while the next is gathered, is this size rather than a
# stripe's. Measured side by side (bench/ranged.py, capped both ways, two rounds, 1 and 2 cores, issue 21):
# peak 278-312 MB against 360-394 with tables of a stripe's size (32 MiB), the same walls and stripes.
ORC_WRITE_BYTES = 8 * 1024 * 1024


def write_orc(source: Source, sink: BinaryIO, ctx: WriteContext) -> WriteReport:
    reader = _reader(source, ctx, PIECE_BYTES["orc"])
    writer = orc.ORCWriter(sink, compression=ORC_CODECS[ctx.options.compression or "snappy"],
                           stripe_size=ctx.options.row_group_bytes)
    wrote = False
    rows = 0
    with _background() as background:
        for table in _row_groups(reader, min(ORC_WRITE_BYTES, ctx.options.row_group_bytes)):
            # Checked here, in order (bad values are counted and the first is named), written there.
            background.submit(writer.write, _orc_readable(table, rows, reader, ctx.options.on_bad_value))
            rows += table.num_rows
            wrote = True
        background.wait()
    if not wrote:
        writer.write(reader.arrow_schema.empty_table())  # an empty audience still carries its schema
    writer.close()
    return WriteReport(reader.rows, reader.bad_values)


# JSON's escapes, as json.dumps(ensure_ascii=False) spells them: backslash first, so that the
# backslashes added by the others are not doubled.
_ESCAPES = [("\\", "\\\\"), ('"', '\\"'), ("\n", "\\n"), ("\r", "\\r"), ("\t", "\\t"),
            ("\b", "\\b"), ("\f", "\\f")]
_CONTROL = [chr(c) for c in range(0x20) if chr(c) not in "\n\r\t\b\f"]
_FIRST_PRINTABLE = 0x20  # every byte below it is a control character (UTF-8 never uses them otherwise)
# Arrow bytes per JSON Lines task: per-call costs are per batch, but each task in flight holds its batch,
# its columns' text and its lines (measured at 2 cores, 256 MiB: peak RSS 273 MB at 1 MiB, 307 MB at 4 MiB,
# the same 33-34 MB/s).
JSONL_CHUNK_BYTES = 1024 * 1024
JSONL_TRIM_EVERY = 32  # batches written between two return_free_pages() (a row group's worth of Arrow)
_PLAIN_FLOAT_LIMIT = 1e16  # below this, Python's repr writes an integral float as digits and ".0"
# -0.0's bits read as an int64: the smallest int64, so a column holds a -0.0 exactly when that is its minimum.
_NEGATIVE_ZERO_BITS = -(2 ** 63)
# Arrow and Python both write a float's shortest round-trip digits, but lay them out differently: Arrow
# positionally for 1e-6 <= |x| < 1e10 and with the shortest exponent ("1e-7") elsewhere, Python (repr,
# json.dumps) positionally for 1e-4 <= |x| < 1e16 and with an exponent of at least two digits ("1e-07").
# They differ only for values that are not integral (those are spelled from their int64) in these ranges:
_POSITIONAL_IN_ARROW_ONLY = (1e-6, 1e-4)  # 0.000015 -> 1.5e-05: re-spelled by compute
_ONE_EXPONENT_DIGIT_IN_ARROW = (1e-10, 1e-6)  # 1.5e-7 -> 1.5e-07: re-spelled by compute
_POSITIONAL_IN_PYTHON_ONLY = (1e10, _PLAIN_FLOAT_LIMIT)  # 1.25e+10 -> 12500000000.25: a regex


def _value_bytes(text: pa.Array) -> pa.Buffer | None:
    """The bytes of a string array's values, back to back, without a copy (None: no bytes at all)."""
    offsets = memoryview(text.buffers()[1]).cast("i")  # int32: a batch is far below 2 GiB of text
    start, end = offsets[text.offset], offsets[text.offset + len(text)]
    data = text.buffers()[2]
    if data is None or end == start:
        return None
    return data.slice(start, end - start)


def _escaped(text: pa.Array) -> pa.Array:
    """Each value's JSON string body, escaped like ``json.dumps(v, ensure_ascii=False)`` (no quotes).

    One search over the column's bytes says which characters are there (most columns have none), and
    only those are replaced, each in one pass. The search is where the CPU went (profile of .jsonl, issue
    21: Arrow's substring and regex matchers scan at ~0.6-0.8 GB/s, once per character): a control
    character is a byte below 0x20, found by the bytes' minimum (vectorised, ~40 GB/s), and a quote or
    a backslash by ``bytes.find`` (memchr, ~25 GB/s with the copy it needs)."""
    data = _value_bytes(text)
    if data is None:
        return text
    lowest = pc.min(pa.Array.from_buffers(pa.uint8(), len(data), [None, data])).as_py()
    controls = lowest < _FIRST_PRINTABLE
    raw = data.to_pybytes()
    for char, escaped in _ESCAPES:  # in their order: backslash first
        if (controls or ord(char) >= _FIRST_PRINTABLE) and char.encode() in raw:
            text = pc.replace_substring(text, char, escaped)
    if controls:
        for char in _CONTROL:
            if char.encode() in raw:
                text = pc.replace_substring(text, char, f"\\u{ord(char):04x}")
    return text


def _float_text(column: pa.Array) -> tuple[pa.Array, str]:
    """(each float's text, the literal after every one of them) exactly as ``json.dumps`` writes them
    (Python's repr); NaN and infinities, which JSON has no text for, as null. An integral value keeps its
    ".0" (a reader that infers types sees a float) and -0.0 its sign. A column of integral values only (an
    id read as NUMERIC) is its int64's digits, the ".0" left to the line's join; others take Arrow's text,
    re-spelled where Arrow lays the digits out otherwise (see _respelled). No Python per value."""
    floats = pc.cast(column, pa.float64())
    magnitude = pc.abs(floats)
    integral = pc.and_(pc.equal(pc.floor(floats), floats), pc.less(magnitude, _PLAIN_FLOAT_LIMIT))
    negative_zero = pc.min(floats.view(pa.int64())).as_py() == _NEGATIVE_ZERO_BITS  # cast to int64: "0"
    if pc.all(integral).as_py():  # no NaN or infinity either: neither is integral
        digits = pc.cast(pc.cast(floats, pa.int64()), pa.string())
        if negative_zero:
            digits = pc.if_else(pc.equal(floats.view(pa.int64()), _NEGATIVE_ZERO_BITS), "-0", digits)
        if digits.null_count:  # a null must be "null", not "null.0"
            return pc.binary_join_element_wise(digits, ".0", ""), ""
        return digits, ".0"
    text = _respelled(pc.cast(column, pa.string()), magnitude, integral)
    if pc.any(integral).as_py():
        if _digits_in_arrow_text(column, magnitude):
            text = pc.if_else(integral, pc.binary_join_element_wise(text, ".0", ""), text)  # "-0" -> "-0.0"
        else:
            digits = pc.binary_join_element_wise(pc.cast(pc.if_else(integral, floats, 0.0), pa.int64())
                                                 .cast(pa.string()), ".0", "")
            text = pc.if_else(integral, digits, text)
            if negative_zero:
                text = pc.if_else(pc.equal(floats.view(pa.int64()), _NEGATIVE_ZERO_BITS), "-0.0", text)
    if not pc.all(pc.is_finite(floats)).as_py():
        text = pc.if_else(pc.is_finite(floats), text, pa.scalar(None, pa.string()))  # no JSON for them
    return text, ""


def _digits_in_arrow_text(column: pa.Array, magnitude: pa.Array) -> bool:
    """Whether Arrow's text of each integral value in ``column`` is its digits ("5", "-0"), so that ".0"
    appended spells it as Python does: so for a float64 below 1e10 (Arrow writes 1e10 as "1e+10"); not
    for a float32, whose shortest text may round its digits ("123456790" for 123456792.0). Spelling
    them from the int64 instead costs two casts and a pass more (a fifth of .jsonl's float column)."""
    if not pa.types.is_float64(column.type):
        return False
    largest = pc.max(magnitude).as_py()  # NaN and nulls skipped
    return largest is not None and largest < _POSITIONAL_IN_PYTHON_ONLY[0]


def _between(magnitude: pa.Array, bounds: tuple[float, float]) -> pa.Array:
    return pc.and_(pc.greater_equal(magnitude, bounds[0]), pc.less(magnitude, bounds[1]))


def _respelled(text: pa.Array, magnitude: pa.Array, integral: pa.Array) -> pa.Array:
    """Arrow's text of each value, with Python's layout where the two differ (see the ranges above):
    in most columns no value is there, and finding that out costs one pass."""
    smallest, largest = (v.as_py() for v in pc.min_max(magnitude).values())  # NaN and nulls skipped
    if smallest is None or (smallest >= _POSITIONAL_IN_ARROW_ONLY[1]
                            and largest < _POSITIONAL_IN_PYTHON_ONLY[0]):
        return text
    masks = []  # each computed only if the column reaches its range (0.0, common, is below 1e-4)
    if smallest < _POSITIONAL_IN_ARROW_ONLY[1]:
        masks.append(_between(magnitude, (_ONE_EXPONENT_DIGIT_IN_ARROW[0], _POSITIONAL_IN_ARROW_ONLY[1])))
    if largest >= _POSITIONAL_IN_PYTHON_ONLY[0]:
        masks.append(pc.and_not(_between(magnitude, _POSITIONAL_IN_PYTHON_ONLY), integral))
    if not masks:  # only NaN: min_max gives NaN, which is in no range
        return text
    differs = masks[0] if len(masks) == 1 else pc.or_(*masks)
    if differs.null_count:
        differs = pc.fill_null(differs, False)
    # Only the values that differ, in order, each kind rewritten where it is; put back in one pass.
    return _rewritten(text, differs, lambda spelled: _python_layout(spelled, pc.filter(magnitude, differs)))


def _rewritten(text: pa.Array, where: pa.Array, rewrite: Callable[[pa.Array], pa.Array]) -> pa.Array:
    """``text`` with its values ``where`` (no null) replaced by ``rewrite`` of them (given in order)."""
    if not pc.any(where).as_py():
        return text
    if pc.all(where).as_py():
        return rewrite(text)
    return pc.replace_with_mask(text, where, rewrite(pc.filter(text, where)))


def _python_layout(text: pa.Array, magnitude: pa.Array) -> pa.Array:
    """Arrow's text of values in the ranges where its layout differs, in Python's layout."""
    text = _rewritten(text, _between(magnitude, _POSITIONAL_IN_ARROW_ONLY), _exponent_of_positional)
    # "1.5e-7" -> "1.5e-07" (the exponents here are -7 to -10: "e-10" has its two digits)
    text = _rewritten(text, pc.less(magnitude, _ONE_EXPONENT_DIGIT_IN_ARROW[1]),
                      lambda t: pc.replace_substring_regex(t, r"e-([1-9])$", r"e-0\1"))
    largest = pc.max(magnitude).as_py()
    if largest >= _POSITIONAL_IN_PYTHON_ONLY[0]:  # "1.234567890125e+10" -> "12345678901.25"
        for exponent in range(10, len(str(int(largest)))):  # each value rewritten by its exponent's rule
            text = _rewritten(text, _between(magnitude, (10.0 ** exponent, 10.0 ** (exponent + 1))),
                              partial(pc.replace_substring_regex,
                                      pattern=rf"^(-?)([1-9])\.(\d{{{exponent}}})(\d+)e\+{exponent}$",
                                      replacement=r"\1\2\3.\4"))
    return text


def _exponent_of_positional(text: pa.Array) -> pa.Array:
    """"0.000015" -> "1.5e-05", "-0.000001" -> "-1e-06": Arrow's positional text of 1e-6 <= |x| < 1e-4."""
    digits = pc.utf8_ltrim(text, "-0.")
    sign = pc.if_else(pc.starts_with(text, "-"), "-", "")
    exponent = pc.if_else(pc.match_substring(text, "0.00000"), "e-06", "e-05")
    spelled = pc.binary_join_element_wise(sign, pc.utf8_slice_codeunits(digits, 0, 1), ".",
                                          pc.utf8_slice_codeunits(digits, 1), exponent, "")
    return pc.replace_substring(spelled, ".e", "e")  # a single digit: "1.e-05" -> "1e-05"


def _json_values(column: pa.Array, before: str) -> tuple[list[Any], str]:
    """(pieces that spell ``before`` then each value in JSON, text after the value), in few passes.

    A column's text without nulls needs no pass of its own: ``before`` (keys, braces) and what follows
    the value (quotes, ".0") are left to the line's join, which copies each value once (issue 21: a join
    per column copied every value twice). With nulls, ``null`` has neither, so the column is joined and
    its nulls filled in one more pass; a boolean is one if_else, ``before`` included. No Python per
    value."""
    type_ = column.type
    if pa.types.is_boolean(type_):
        spelled = pc.if_else(column, before + "true", before + "false")
    else:
        if pa.types.is_string(type_):
            text, opening, after = _escaped(column), '"', '"'
        elif pa.types.is_integer(type_) or pa.types.is_decimal(type_):
            # a decimal as Python's str(Decimal): an exact JSON number
            text, opening, after = pc.cast(column, pa.string()), "", ""
        elif pa.types.is_floating(type_):
            (text, after), opening = _float_text(column), ""
        else:  # timestamp ("2024-01-01 12:00:00.000", as Athena's JSON SerDe reads it) or date
            text, opening, after = pc.cast(column, pa.string()), '"', '"'
        if text.null_count == 0:
            return [before + opening, text], after
        spelled = pc.binary_join_element_wise(before + opening, text, after, "")
    if spelled.null_count:
        spelled = pc.fill_null(spelled, pa.scalar(before + "null", pa.string()))
    return [spelled], ""


def json_lines(batch: pa.RecordBatch) -> bytes | memoryview:
    """The batch as JSON Lines: one object per row, keys as in the Glue schema."""
    pieces: list[Any] = []
    literal = ""
    for index, name in enumerate(batch.schema.names):
        before = literal + ("{" if index == 0 else ",") + json.dumps(name) + ":"
        spelled, literal = _json_values(batch.column(index), before)
        pieces += spelled
    pieces.append(literal + "}\n")
    lines = pc.binary_join_element_wise(*pieces, "")
    # A string array's values sit back to back in one buffer: that buffer is the batch's text.
    offsets = memoryview(lines.buffers()[1]).cast("i")  # int32: one batch is far below 2 GiB of text
    return memoryview(lines.buffers()[2])[offsets[lines.offset]:offsets[lines.offset + len(lines)]]


def _chunks(reader: TypedCsvReader, target_bytes: int) -> Iterator[pa.RecordBatch]:
    """The reader's batches gathered into batches of about ``target_bytes``."""
    for table in _row_groups(reader, target_bytes):
        yield from table.combine_chunks().to_batches()


def write_jsonl(source: Source, sink: BinaryIO, ctx: WriteContext) -> WriteReport:
    """One object per line with typed values and nulls as null, names as in the Glue schema."""
    reader = _reader(source, ctx, PIECE_BYTES["jsonl"])
    workers = max(1, pa.cpu_count())
    pending: deque[Future[bytes | memoryview]] = deque()
    written = 0
    with ThreadPoolExecutor(workers, thread_name_prefix="jsonl") as pool:
        try:
            for batch in _chunks(reader, JSONL_CHUNK_BYTES):
                if batch.num_rows:
                    pending.append(pool.submit(json_lines, batch))
                while len(pending) > workers or (pending and pending[0].done()):
                    sink.write(pending.popleft().result())
                    written += 1
                    if written % JSONL_TRIM_EVERY == 0:
                        return_free_pages()
            while pending:
                sink.write(pending.popleft().result())
        finally:
            for future in pending:
                future.cancel()
    return WriteReport(reader.rows, reader.bad_values)
