"""The headerless CSV stream as typed Arrow record batches, with a policy for values that do not fit.

pyarrow's CSV reader does the parsing (quotes, embedded newlines, UTF-8) in C++, reading the HTTP
stream block by block, so memory stays flat. Columns are read as text and converted here, because a
conversion error from the reader itself names neither the row nor the value, and the user needs both.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import BinaryIO

import pyarrow as pa
import pyarrow.csv as pacsv

from transforms.errors import BadValueError, UnprocessableError
from transforms.schema.arrow import arrow_type, converter
from transforms.schema.columns import TypedSchema

# Bytes of CSV per block read. pyarrow's streaming reader reads 32 blocks ahead on its own thread (as Python
# bytes: memory the Arrow pool never sees), so blocks stay small: 8 MiB ahead, not 32.
BLOCK_SIZE = 256 * 1024
# Blocks are converted a few at a time, as one table of several chunks: each conversion is a few kernel
# calls, whose per-call cost would otherwise be paid for every small block.
CONVERT_BYTES = 1024 * 1024
POLICIES = ("fail", "null")
SALVAGE_SLICE = 64  # below this many values, a slice with a bad value is converted value by value


class TypedCsvReader:
    """Iterate typed batches; ``rows`` and ``bad_values`` (column -> count) are filled in as it goes."""

    def __init__(self, source: BinaryIO, schema: TypedSchema, on_bad_value: str = "fail",
                 block_size: int = BLOCK_SIZE) -> None:
        self._source = source
        self._schema = schema
        self._policy = on_bad_value
        self._block_size = block_size
        self._converters = [converter(f.type) for f in schema.fields]
        self.arrow_schema = pa.schema([pa.field(f.name, arrow_type(f.type)) for f in schema.fields])
        self.rows = 0
        self._parsed = 0  # rows the CSV reader gave, converted or not yet
        self.bad_values: dict[str, int] = {}

    def __iter__(self) -> Iterator[pa.RecordBatch]:
        first = self._source.read(1)
        if not first:
            return  # an empty audience: pyarrow refuses an empty CSV, the writers make a valid empty file
        names = self._schema.names
        try:
            reader = pacsv.open_csv(
                _Prepend(first, self._source),
                read_options=pacsv.ReadOptions(column_names=names, block_size=self._block_size),
                parse_options=pacsv.ParseOptions(newlines_in_values=True),
                convert_options=pacsv.ConvertOptions(
                    column_types={name: pa.string() for name in names},
                    strings_can_be_null=True, null_values=[""], quoted_strings_can_be_null=False),
            )
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
        table = self._convert(pa.Table.from_batches(batches))
        self.rows += table.num_rows
        yield from table.combine_chunks().to_batches()  # one batch: downstream per-chunk costs stay few

    def _convert(self, batch: pa.Table) -> pa.Table:
        columns = []
        failures: list[BadValueError] = []
        for index, (field, convert) in enumerate(zip(self._schema.fields, self._converters, strict=True)):
            text = batch.column(index)
            try:
                columns.append(convert(text))
            except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
                text = text.combine_chunks()  # a bad value somewhere: searched in one array
                try:
                    columns.append(self._salvage(text, field.name, field.type, convert))
                except BadValueError as exc:
                    failures.append(exc)
        if failures:  # the first bad value in row order (then column order), whichever column it is in
            raise min(failures, key=lambda failure: failure.row)
        return pa.Table.from_arrays(columns, schema=self.arrow_schema)

    def _salvage(self, text: pa.Array, column: str, expected: str, convert) -> pa.Array:
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
                        raise BadValueError(self.rows + offset + 1, column, value[0].as_py(),
                                            expected) from None
                    self.bad_values[column] = self.bad_values.get(column, 0) + 1
                    pieces.append(pa.nulls(1, target))

        walk(0, len(text))
        return pa.concat_arrays([piece.cast(target) for piece in pieces])


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
