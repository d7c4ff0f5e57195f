"""Pieces parsed and converted on several threads (typed_csv): the same rows, in the same order, as one
thread reading block after block, and the streaming reader's own reading wherever quotes could mislead
a cut (a quote in the middle of an unquoted field, line ends without a line feed)."""

from __future__ import annotations

import io
import json
import random

import pyarrow as pa
import pyarrow.csv as pacsv
import pytest

from transforms.ci360.layout import parse_layout
from transforms.errors import BadValueError
from transforms.formats import typed_csv
from transforms.formats.typed_csv import TypedCsvReader, _record_end
from transforms.schema.columns import build_schema
from transforms.sources.local import LocalStream

COLUMNS = [("id", "NUMERIC"), ("name", "CHARACTER"), ("at", "DATETIME"), ("ok", "BOOLEAN")]
LAYOUT = json.dumps([{"columnName": name, "dataType": kind} for name, kind in COLUMNS]).encode()


def rows(count: int, seed: int = 7) -> list[str]:
    """Rows with quoted commas, escaped quotes and line breaks (LF and CRLF) inside quoted fields."""
    rng = random.Random(seed)
    out = []
    for row in range(1, count + 1):
        name = rng.choice(['plain', '"Last, First"', '"say ""hi"""', '"two\nlines"', '"cr\r\nlf"', '""', ''])
        ok = rng.choice(["true", "False", "YES", ""])
        out.append(f"{row},{name},2024-02-29 12:00:{row % 60:02d}.5,{ok}")
    return out


def read(data: bytes, block_size: int, workers: int, policy: str = "fail") -> tuple[pa.Table, TypedCsvReader]:
    schema = build_schema(parse_layout(LAYOUT), {"id": "bigint"})
    reader = TypedCsvReader(LocalStream(io.BytesIO(data), len(data)), schema, policy, block_size=block_size,
                            workers=workers)
    return pa.Table.from_batches(list(reader), reader.arrow_schema), reader


def text_table(data: bytes) -> pa.Table:
    """The file as pyarrow's own streaming reader sees it, every column as text."""
    names = [name for name, _ in COLUMNS]
    return pacsv.open_csv(io.BytesIO(data), read_options=pacsv.ReadOptions(column_names=names),
                          parse_options=pacsv.ParseOptions(newlines_in_values=True),
                          convert_options=pacsv.ConvertOptions(column_types={n: pa.string() for n in names},
                                                               strings_can_be_null=True, null_values=[""],
                                                               quoted_strings_can_be_null=False)).read_all()


@pytest.mark.parametrize("ending", ["\n", "\r\n"])
def test_pieces_on_many_threads_give_the_rows_of_one_thread_in_order(ending: str) -> None:
    data = (ending.join(rows(40_000)) + ending).encode()
    whole, one = read(data, 64 * 1024 * 1024, workers=1)  # one piece
    assert one.rows == 40_000
    for block_size in (4 * 1024, 100_003):
        table, many = read(data, block_size, workers=4)
        assert many.rows == 40_000 and table.equals(whole)
    assert whole.column("id").to_pylist() == list(range(1, 40_001))
    assert whole.column("name").to_pylist() == text_table(data).column("name").to_pylist()


def test_the_last_record_without_its_line_feed_is_read() -> None:
    data = "\n".join(rows(5_000)).encode()
    table, reader = read(data, 4 * 1024, workers=3)
    assert reader.rows == 5_000 and table.column("id")[-1].as_py() == 5_000


def test_a_bad_value_is_named_by_its_row_whichever_piece_holds_it() -> None:
    lines = rows(30_000)
    lines[23_456] = "23457,x,2024-02-30 00:00:00,true"
    data = ("\n".join(lines) + "\n").encode()
    with pytest.raises(BadValueError) as caught:
        read(data, 8 * 1024, workers=4)
    assert caught.value.row == 23_457
    table, reader = read(data, 8 * 1024, workers=4, policy="null")
    assert reader.bad_values == {"at": 1} and table.column("at")[23_456].as_py() is None


def test_a_quote_inside_an_unquoted_field_reads_as_pyarrow_reads_it(monkeypatch: pytest.MonkeyPatch) -> None:
    """Not RFC 4180, and pyarrow takes the quote literally: quote parity then misplaces cuts (one lands
    inside a later quoted field with a line break), which must never change a row. (Blocks of 16 KiB
    and more: with 1 KiB blocks, pyarrow's streaming reader itself drops the LF of a quoted CRLF here.)"""
    lines = rows(20_000)
    for row in range(100, 20_000, 997):
        lines[row] = f'{row + 1},O"Neil,2024-01-01 00:00:00,true'  # odd quotes: parity flips
    data = ("\n".join(lines) + "\n").encode()
    expected = text_table(data)
    fallbacks: list[int] = []
    original = TypedCsvReader._fall_back

    def counted(self, *args):  # type: ignore[no-untyped-def]
        fallbacks.append(self.rows)
        return original(self, *args)

    monkeypatch.setattr(TypedCsvReader, "_fall_back", counted)
    for block_size in (16 * 1024, 64 * 1024):
        table, reader = read(data, block_size, workers=4)
        assert reader.rows == expected.num_rows
        assert table.column("name").to_pylist() == expected.column("name").to_pylist()
        assert table.column("id").to_pylist() == [int(v) for v in expected.column("id").to_pylist()]
    assert fallbacks  # a cut was misplaced, seen, and the streaming reader took over


def test_line_ends_without_a_line_feed_are_read_with_memory_bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    data = ("\r".join(f"{n},n{n},2024-01-01 00:00:00,true" for n in range(1, 20_001)) + "\r").encode()
    seen: list[int] = []
    original = typed_csv._pieces

    def watched(*args, **kwargs):  # type: ignore[no-untyped-def]
        for piece in original(*args, **kwargs):
            seen.append(len(piece))
            yield piece

    monkeypatch.setattr(typed_csv, "_pieces", watched)
    table, reader = read(data, 4 * 1024, workers=2)
    assert reader.rows == 20_000 and table.column("id").to_pylist() == list(range(1, 20_001))
    assert max(seen) <= (typed_csv.UNCUT_PIECES + 1) * 4 * 1024


@pytest.mark.parametrize(("data", "end"), [
    (b"a,b\nc,d\n", 8), (b"a,b\nc,d", 4), (b'a,"b\nc",d\ne', 10), (b'a,"b\nc', 0), (b'x,"q ""\n"" r"\n', 14),
    (b"no line end", 0),
])
def test_a_cut_falls_after_the_last_line_feed_outside_quotes(data: bytes, end: int) -> None:
    assert _record_end([data]) == end
    for split in range(len(data) + 1):  # wherever the stream's chunks fall
        assert _record_end([data[:split], data[split:]]) == end
        assert _record_end([b"", data[:split], b"", data[split:]]) == end
