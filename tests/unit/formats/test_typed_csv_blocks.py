"""Small CSV blocks (a short read-ahead) converted a few at a time: the same typed rows whatever the block
size, and errors still placed by row."""

from __future__ import annotations

import io
import json

import pyarrow as pa
import pytest

from transforms.ci360.layout import parse_layout
from transforms.errors import BadValueError, UnprocessableError
from transforms.formats.typed_csv import TypedCsvReader
from transforms.schema.columns import build_schema
from transforms.sources.local import LocalStream

LAYOUT = json.dumps([{"columnName": name, "dataType": kind} for name, kind in
                     [("id", "NUMERIC"), ("name", "CHARACTER"), ("at", "DATETIME"), ("ok", "BOOLEAN")]])
ROWS = 100_000


def csv(bad_row: int | None = None, bad_line: str = "") -> bytes:
    lines = [f'{row},"name, {row}\nsecond line",2024-02-29 12:00:{row % 60:02d}.123,'
             f'{"true" if row % 3 else ""}' for row in range(1, ROWS + 1)]
    if bad_row is not None:
        lines[bad_row - 1] = bad_line
    return ("\n".join(lines) + "\n").encode()


def read(data: bytes, block_size: int, policy: str = "fail") -> tuple[pa.Table, TypedCsvReader]:
    schema = build_schema(parse_layout(LAYOUT.encode()), {"id": "bigint"})
    reader = TypedCsvReader(LocalStream(io.BytesIO(data), len(data)), schema, policy, block_size=block_size)
    return pa.Table.from_batches(list(reader), reader.arrow_schema), reader


def test_the_same_rows_whatever_the_block_size() -> None:
    data = csv()
    assert len(data) > 4 * 1024 * 1024  # several groups of blocks
    whole, reader = read(data, 8 * 1024 * 1024)
    assert reader.rows == ROWS and whole.num_rows == ROWS
    for block_size in (16 * 1024, 256 * 1024):
        table, small = read(data, block_size)
        assert small.rows == ROWS and table.equals(whole)
    assert whole.column("name")[4].as_py() == "name, 5\nsecond line"
    assert whole.column("ok").null_count == ROWS // 3


def test_a_bad_value_deep_in_the_file_is_named_by_its_row() -> None:
    data = csv(77_777, '77777,"x",2024-02-30 00:00:00,true')
    with pytest.raises(BadValueError) as caught:
        read(data, 16 * 1024)
    assert caught.value.row == 77_777 and "2024-02-30" in str(caught.value)
    table, reader = read(data, 16 * 1024, "null")
    assert reader.bad_values == {"at": 1} and reader.rows == ROWS
    assert table.column("at")[77_776].as_py() is None and table.column("at")[77_777].as_py() is not None


def test_a_row_that_does_not_fit_the_layout_is_placed_after_the_rows_before_its_block() -> None:
    data = csv(60_000, "60000,only two")
    with pytest.raises(UnprocessableError) as caught:
        read(data, 16 * 1024)
    after = caught.value.details[0]["afterRow"]
    assert 60_000 - 400 < after < 60_000  # a 16 KiB block holds ~300 of these rows
