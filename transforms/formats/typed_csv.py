"""The headerless CSV stream as typed Arrow record batches, with a policy for values that do not fit.

pyarrow's CSV parser does the parsing (quotes, embedded newlines, UTF-8) in C++. Numbers, dates and
timestamps are typed by it while it parses (``DIRECT_TYPES``: the same parsers as our casts); a piece
it refuses, and every piece after it, is read as text and converted here, because a conversion error
from the reader itself names neither the row nor the value, and the user needs both.

Every core: the stream is cut into pieces of whole records (``block_size`` bytes each, cut after the
last line feed outside quotes), and each piece is parsed and converted on a pool of threads (pyarrow
releases the GIL), pieces side by side and handed on in their order, so rows keep the file's order and
row numbers stay exact. Memory is bounded: at most ``workers + 2`` pieces are read ahead of the consumer.

A cut is only as good as the quotes: a quote in the middle of an unquoted field (not RFC 4180, which
pyarrow reads as a literal quote) would mislead the count. A bad cut always shows itself (with two
columns or more, a piece cut inside a quoted field has a row with too few fields, or the next one
does), and a piece is handed on only once the piece after it has parsed: on any parse failure the rest
of the stream, from the piece before the failure, is read by pyarrow's own streaming reader, one block
after another as before, which places a row that does not fit the layout by the rows before its block.
"""

from __future__ import annotations

import itertools
import os
from collections import deque
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from functools import partial
from typing import Any, BinaryIO

import pyarrow as pa
import pyarrow.csv as pacsv

from transforms.errors import BadValueError, UnprocessableError
from transforms.schema.arrow import arrow_type, converter
from transforms.schema.columns import TypedSchema

# Bytes of CSV per piece parsed and converted as one task: per-call costs are per piece, and each piece in
# flight holds its text, its string columns and its typed ones.
BLOCK_SIZE = 1024 * 1024
# The serial path (pyarrow's streaming reader, after a piece failed to parse) reads 32 blocks ahead on
# its own thread, as Python bytes that the Arrow pool never sees: its blocks stay small, 8 MiB ahead.
STREAMING_BLOCK_SIZE = 256 * 1024
# Blocks of the serial path are converted a few at a time, as one table of several chunks: each
# conversion is a few kernel calls, whose per-call cost would otherwise be paid for every small block.
CONVERT_BYTES = 1024 * 1024
POLICIES = ("fail", "null")
# A piece with no record end found in this many blocks is handed on as it is: it cannot parse as it
# stands, so the streaming reader takes over (memory stays bounded whatever the line ends or quotes).
UNCUT_PIECES = 16
SALVAGE_SLICE = 64  # below this many values, a slice with a bad value is converted value by value
# Types pyarrow's CSV reader parses straight from the text exactly as our converters would (the same
# parsers: numbers trimmed of spaces, ISO 8601, no zone offset), checked value by value against them
# (tests/unit/formats/test_typed_csv_direct.py). Not boolean (our words), not string, and not decimal
# (the reader does not check the precision: 123456789.1 lands in a decimal(10,2)). Read so, a piece
# skips building these columns as text and casting them (15% of the conversion's CPU on the bench's
# audience, issue 21's profile).
DIRECT_TYPES = frozenset({"double", "float", "bigint", "int", "smallint", "tinyint", "date", "timestamp"})


def available_cores() -> int:
    """The cores this process may run on (its affinity: ``taskset``, a container's CPU set)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):
        return max(1, os.cpu_count() or 1)


@dataclass
class _Converted:
    """One piece's outcome, row numbers relative to the piece (the consumer knows the rows before it)."""

    table: pa.Table | None = None
    bad_values: dict[str, int] = field(default_factory=dict)
    failure: BadValueError | None = None  # the first bad value under ``fail``, row within the piece
    parse_error: str | None = None  # pyarrow could not parse the piece as rows of the layout


class TypedCsvReader:
    """Iterate typed batches; ``rows`` and ``bad_values`` (column -> count) are filled in as it goes."""

    def __init__(self, source: BinaryIO, schema: TypedSchema, on_bad_value: str = "fail",
                 block_size: int = BLOCK_SIZE, workers: int | None = None) -> None:
        self._source = source
        self._schema = schema
        self._policy = on_bad_value
        self._block_size = block_size
        self._workers = workers or available_cores()
        self._converters = [converter(f.type) for f in schema.fields]
        self.arrow_schema = pa.schema([pa.field(f.name, arrow_type(f.type)) for f in schema.fields])
        self.rows = 0
        self._parsed = 0  # rows the CSV parser gave, converted or not yet
        self.bad_values: dict[str, int] = {}
        names = schema.names
        self._parse_options = pacsv.ParseOptions(newlines_in_values=True)
        self._convert_options = pacsv.ConvertOptions(
            column_types={name: pa.string() for name in names},
            strings_can_be_null=True, null_values=[""], quoted_strings_can_be_null=False)
        # A piece is first read with these columns typed by the reader; on any error (a value that needs
        # our converters: padding, a quoted empty, finer than milliseconds; or a bad value) it is read
        # again as text, and so is every piece after it (``_direct`` off): dirty data pays once.
        self._direct = [f.type in DIRECT_TYPES for f in schema.fields]
        self._direct_options = pacsv.ConvertOptions(
            column_types={f.name: (self.arrow_schema.field(i).type if direct else pa.string())
                          for i, (f, direct) in enumerate(zip(schema.fields, self._direct, strict=True))},
            strings_can_be_null=True, null_values=[""], quoted_strings_can_be_null=False)
        self._read_direct = any(self._direct)

    def __iter__(self) -> Iterator[pa.RecordBatch]:
        first = self._source.read(1)
        if not first:
            return  # an empty audience: pyarrow refuses an empty CSV, the writers make a valid empty file
        if len(self._schema.names) < 2:  # a bad cut could not be told from a good one: see the docstring
            yield from self._streamed(_Prepend(first, self._source))
            return
        yield from self._in_parallel(first)

    # -- pieces on every core ----------------------------------------------------------------------
    def _in_parallel(self, first: bytes) -> Iterator[pa.RecordBatch]:
        pool = ThreadPoolExecutor(self._workers, thread_name_prefix="csv-convert")
        pending: deque[tuple[pa.Buffer, Future[_Converted]]] = deque()
        held: tuple[pa.Buffer, _Converted] | None = None  # parsed; handed on once its successor parses
        pieces = _pieces(first, self._source, self._block_size)
        try:
            for piece in itertools.chain(pieces, [None]):  # None: the file is read, drain what is left
                if piece is not None:
                    pending.append((piece, pool.submit(self._convert_piece, piece)))
                while pending and (piece is None or len(pending) > self._workers + 1 or pending[0][1].done()):
                    text, future = pending.popleft()
                    outcome = future.result()
                    if outcome.parse_error is not None:
                        yield from self._fall_back(held, text, pending, pieces)
                        return
                    if held is not None:
                        yield from self._hand_on(held[1])
                    held = (text, outcome)
            if held is not None:
                yield from self._hand_on(held[1])
        finally:
            for _, future in pending:
                future.cancel()
            pool.shutdown(wait=True, cancel_futures=True)

    def _fall_back(self, held: tuple[pa.Buffer, _Converted] | None, failed: pa.Buffer,
                   pending: deque[tuple[pa.Buffer, Future[_Converted]]],
                   pieces: Iterator[pa.Buffer]) -> Iterator[pa.RecordBatch]:
        """A piece did not parse: the rest of the stream, from the piece before it (not yet handed on:
        a bad cut may have broken it too), through pyarrow's streaming reader."""
        texts = ([held[0]] if held is not None else []) + [failed] + [text for text, _ in pending]
        for _, future in pending:
            future.cancel()
        pending.clear()
        rest = _Chain(texts, pieces)
        yield from self._streamed(rest)

    def _hand_on(self, outcome: _Converted) -> Iterator[pa.RecordBatch]:
        """A piece's batches, in order, with its row numbers and counts added to the stream's."""
        if outcome.failure is not None:
            failure = outcome.failure
            details = failure.details[0]
            raise BadValueError(self.rows + failure.row, failure.column, details["value"],
                                details["expected"])
        for column, count in outcome.bad_values.items():
            self.bad_values[column] = self.bad_values.get(column, 0) + count
        table = outcome.table
        assert table is not None
        self._parsed += table.num_rows
        self.rows += table.num_rows
        yield from table.to_batches()

    def _read_piece(self, text: pa.Buffer, options: pacsv.ConvertOptions) -> pa.Table:
        return pacsv.read_csv(
            pa.BufferReader(text),
            read_options=pacsv.ReadOptions(column_names=self._schema.names, use_threads=False,
                                           block_size=len(text) + 1),
            parse_options=self._parse_options, convert_options=options)

    def _convert_piece(self, text: pa.Buffer) -> _Converted:
        """On a pool thread: parse one piece of whole records and convert its columns."""
        direct = self._read_direct
        table = None
        if direct:
            try:
                table = self._read_piece(text, self._direct_options)
            except pa.ArrowInvalid:
                self._read_direct = direct = False  # read as text, as every piece after it
        if table is None:
            try:
                table = self._read_piece(text, self._convert_options)
            except pa.ArrowInvalid as exc:
                return _Converted(parse_error=str(exc).splitlines()[0][:200] if str(exc) else
                                  type(exc).__name__)
        outcome = _Converted()
        try:
            outcome.table = self._convert(table, 0, outcome.bad_values, direct).combine_chunks()
        except BadValueError as exc:
            outcome.failure = exc
        return outcome

    # -- one block after another: pyarrow's streaming reader ---------------------------------------
    def _streamed(self, source: Any) -> Iterator[pa.RecordBatch]:
        names = self._schema.names
        try:
            block_size = min(self._block_size, STREAMING_BLOCK_SIZE)
            reader = pacsv.open_csv(
                source, read_options=pacsv.ReadOptions(column_names=names, block_size=block_size),
                parse_options=self._parse_options, convert_options=self._convert_options)
            pending: list[pa.RecordBatch] = []
            size = 0
            for batch in reader:
                pending.append(batch)
                size += batch.nbytes
                self._parsed += batch.num_rows
                if size >= CONVERT_BYTES:
                    yield from self._converted(pending)
                    pending, size = [], 0
            if pending:
                yield from self._converted(pending)
        except pa.ArrowInvalid as exc:
            # The data file itself is off (a row with more or fewer fields than the layout has
            # columns, bytes that are not UTF-8): the caller's data, not a failure of ours.
            reason = str(exc).splitlines()[0][:200] if str(exc) else type(exc).__name__
            raise UnprocessableError(f"the data file does not fit the layout's {len(names)} columns "
                                     f"after row {self._parsed}: {reason}",
                                     [{"file": "data", "afterRow": self._parsed}]) from None

    def _converted(self, batches: list[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
        table = self._convert(pa.Table.from_batches(batches), self.rows, self.bad_values)
        self.rows += table.num_rows
        yield from table.combine_chunks().to_batches()  # one batch: downstream per-chunk costs stay few

    # -- conversion ----------------------------------------------------------------------------------
    def _convert(self, batch: pa.Table, rows_before: int, bad_values: dict[str, int],
                 direct: bool = False) -> pa.Table:
        """The columns typed; with ``direct``, those the CSV reader typed already are taken as they are."""
        columns = []
        failures: list[BadValueError] = []
        for index, (field_, convert) in enumerate(zip(self._schema.fields, self._converters, strict=True)):
            text = batch.column(index)
            if direct and self._direct[index]:
                columns.append(text)
                continue
            try:
                columns.append(convert(text))
            except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
                text = text.combine_chunks()  # a bad value somewhere: searched in one array
                try:
                    columns.append(self._salvage(text, field_.name, field_.type, convert, rows_before,
                                                 bad_values))
                except BadValueError as exc:
                    failures.append(exc)
        if failures:  # the first bad value in row order (then column order), whichever column it is in
            raise min(failures, key=lambda failure: failure.row)
        return pa.Table.from_arrays(columns, schema=self.arrow_schema)

    def _salvage(self, text: pa.Array, column: str, expected: str, convert: Any, rows_before: int,
                 bad_values: dict[str, int]) -> pa.Array:
        """Find the bad values by halving: a slice that converts is kept whole, one that does not is
        split, and slices of ``SALVAGE_SLICE`` values are tried value by value. A few bad values in a
        batch cost a few dozen small conversions, not one per value; the first bad one (in row order)
        is still named exactly under ``fail``, and under ``null`` each becomes a null, counted."""
        target = self.arrow_schema.field(column).type
        pieces: list[pa.Array] = []

        def walk(start: int, length: int) -> None:
            part = text.slice(start, length)
            try:
                pieces.append(convert(part))
                return
            except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
                pass
            if length > SALVAGE_SLICE:
                half = length // 2
                walk(start, half)
                walk(start + half, length - half)
                return
            for offset in range(start, start + length):
                value = text.slice(offset, 1)
                try:
                    pieces.append(convert(value))
                except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
                    if self._policy != "null":
                        raise BadValueError(rows_before + offset + 1, column, value[0].as_py(),
                                            expected) from None
                    bad_values[column] = bad_values.get(column, 0) + 1
                    pieces.append(pa.nulls(1, target))

        walk(0, len(text))
        return pa.concat_arrays([piece.cast(target) for piece in pieces])


def _record_end(parts: list[bytes]) -> int:
    """Where the last whole record of ``parts`` (read back to back) ends, after its line feed; 0 if none.

    They start at a record's start, so a line feed ends a record when the quotes before it pair up.
    Counting from the end, each byte is counted at most twice."""
    quotes = sum(part.count(b'"') for part in parts)
    offset = sum(len(part) for part in parts)
    for part in reversed(parts):
        offset -= len(part)
        end = len(part)
        position = part.rfind(b"\n")
        while position >= 0:
            quotes -= part.count(b'"', position, end)
            if quotes % 2 == 0:
                return offset + position + 1
            end = position
            position = part.rfind(b"\n", 0, position)
        quotes -= part.count(b'"', 0, end)
    return 0


def _joined(parts: list[bytes], length: int) -> pa.Buffer:
    """``parts`` back to back in one buffer, not zeroed first (a bytearray would be), from the C
    allocator: Arrow's jemalloc keeps freed pages for 250 ms (``transforms.memory.JEMALLOC_CONF``), which for
    pieces came to 20-40 MB more peak on one core (bench/ranged.py, 4x, issue 21), for fewer page
    faults that did not show in the wall time."""
    buffer = pa.allocate_buffer(length, memory_pool=pa.system_memory_pool())
    view = memoryview(buffer).cast("B")
    position = 0
    for part in parts:
        view[position:position + len(part)] = part
        position += len(part)
    return buffer


def _pieces(first: bytes, source: Any, size: int) -> Iterator[pa.Buffer]:
    """The stream as pieces of whole records, about ``size`` bytes each (a record longer than that
    makes its piece longer); the last piece is what is left, whole records or not.

    Each byte is copied once on its way into a piece: the stream's chunks as they arrive, into one
    buffer behind what the last cut left over (reading ``size`` bytes, then appending them, copied
    every byte twice: an eighth of the typed formats' page faults, issue 21's profile)."""
    chunks = iter(source.chunks(size)) if hasattr(source, "chunks") else iter(partial(source.read, size), b"")
    carry = first
    while True:
        parts, wanted = [carry], size
        while wanted > 0:
            chunk = next(chunks, b"")
            if not chunk:
                break
            parts.append(chunk)
            wanted -= len(chunk)
        if wanted == size:  # the stream has ended
            if carry:
                yield pa.py_buffer(carry)
            return
        length = sum(len(part) for part in parts)
        cut = _record_end(parts)
        if not cut and length >= UNCUT_PIECES * size:
            cut = length  # no line feed outside quotes (CR line ends, a stray quote): see the docstring
        if cut:
            data = _joined(parts, length)
            carry = data.slice(cut).to_pybytes()
            yield data.slice(0, cut)
        else:
            carry = b"".join(parts)


class _Chain:
    """A readable over pieces already read, then the pieces still to come (for the streaming reader)."""

    def __init__(self, texts: list[pa.Buffer], rest: Iterator[pa.Buffer]) -> None:
        self._texts = deque(bytes(text) for text in texts)
        self._rest = rest
        self.closed = False

    def readable(self) -> bool:
        return True

    def read(self, size: int = -1) -> bytes:
        out = bytearray()
        while size is None or size < 0 or len(out) < size:
            if not self._texts:
                following = next(self._rest, None)
                if following is None:
                    break
                self._texts.append(bytes(following))
            head = self._texts.popleft()
            take = len(head) if size is None or size < 0 else min(len(head), size - len(out))
            out += head[:take]
            if take < len(head):
                self._texts.appendleft(head[take:])
        return bytes(out)


class _Prepend:
    """A readable that first returns bytes already taken from the stream (to detect an empty one)."""

    def __init__(self, head: bytes, rest: BinaryIO) -> None:
        self._head = head
        self._rest = rest
        self.closed = False

    def readable(self) -> bool:
        return True

    def read(self, size: int = -1) -> bytes:
        if self._head:
            head, self._head = self._head, b""
            if size is None or size < 0:
                return head + self._rest.read()
            return head + self._rest.read(size - len(head)) if size > len(head) else head
        return self._rest.read(size)
