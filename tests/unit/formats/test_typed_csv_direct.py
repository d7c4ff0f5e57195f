"""Columns the CSV reader types itself (typed_csv.DIRECT_TYPES): every value lands as our converters would
land it from its text, a piece the reader refuses is read again as text, and so is the rest of the stream."""

from __future__ import annotations

import io
import json
import math

import pyarrow as pa
import pyarrow.csv as pacsv
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from transforms.ci360.layout import parse_layout
from transforms.errors import BadValueError
from transforms.formats import typed_csv
from transforms.formats.typed_csv import DIRECT_TYPES, TypedCsvReader
from transforms.schema.arrow import arrow_type, converter
from transforms.schema.columns import build_schema
from transforms.sources.local import LocalStream

TRICKY = {
    "double": ["1", "-1", " 1", "1 ", "\t1", "+1", "1e5", "1E5", ".5", "5.", "inf", "-inf", "nan", "NaN",
               "Infinity", "0x10", "1_000", "1d", "1.7976931348623157e309", "4.9e-325", "00.5", "-0", "1e",
               "e5", "--1", "\u00a01", "1\u00a0", "\u0661", "0.1000000000000000055511151231257827"],
    "float": ["1", "0.1", "3.4e39", "1e-50", " 2 ", "nan", "16777217"],
    "bigint": ["5", "+5", "-5", "05", " 5", "5 ", "5.0", "0x10", "9223372036854775807", "9223372036854775808",
               "-9223372036854775808", "1e3", "\u00a05"],
    "int": ["5", "2147483647", "2147483648", "-2147483649", " 7"],
    "smallint": ["32767", "32768", "-32768"],
    "tinyint": ["127", "128", "-128"],
    "date": ["2020-01-01", "2020-1-1", "20200101", " 2020-01-01", "2020-01-01 ", "2020-02-30", "2020-02-29",
             "2020-01-01T00:00", "0001-01-01", "9999-12-31", "2020-01-01Z"],
    "timestamp": ["2020-01-01 12:00", "2020-01-01T12:00:00", "2020-01-01 12:00:00Z",
                  "2020-01-01 12:00:00+01:00", "2020-01-01", "2020-01-01 12", "2020-01-01 12:00:00.123",
                  "2020-01-01 12:00:00.1234", "2020-01-01 12:00:60", "2020-01-01 12:00:00.1",
                  " 2020-01-01 12:00:00", "2020-01-01 12:00:00 ",
                  "1969-12-31 23:59:59.999", "1969-12-31 23:59:59.9995", "1600-01-01 00:00:00",
                  "3000-01-01 00:00:00", "2020-01-01 24:00:00", "2020-01-01T12:00:00.000Z",
                  "2020-01-01 12:00:00,123", "2020-01-01 1200"],
}
OPTIONS = {"null_values": [""], "strings_can_be_null": True, "quoted_strings_can_be_null": False}


def field(value: str) -> str:
    return '"' + value.replace('"', '""') + '"' if any(c in value for c in ',"\n\r') else value


def same(a: list, b: list) -> bool:
    return all(x == y or (isinstance(x, float) and isinstance(y, float) and math.isnan(x) and math.isnan(y))
               for x, y in zip(a, b, strict=True))


def reader_and_ours(athena: str, line: bytes) -> tuple[list | None, list | None]:
    """(what the CSV reader types the field as, None if it refuses; what our converter makes of its text,
    None if it refuses)."""
    def parsed(type_: pa.DataType) -> pa.ChunkedArray:
        options = pacsv.ConvertOptions(column_types={"c": type_}, **OPTIONS)
        return pacsv.read_csv(pa.BufferReader(line), read_options=pacsv.ReadOptions(column_names=["c"]),
                              convert_options=options).column(0)

    try:
        direct = parsed(arrow_type(athena)).to_pylist()
    except pa.ArrowInvalid:
        direct = None
    text = parsed(pa.string()).combine_chunks()
    try:
        ours = converter(athena)(text).to_pylist()
    except pa.ArrowInvalid:
        ours = None
    return direct, ours


@pytest.mark.parametrize("athena", sorted(DIRECT_TYPES))
def test_what_the_reader_types_itself_is_what_our_converter_makes_of_the_text(athena: str) -> None:
    for value in TRICKY[athena] + ['""', ""]:
        line = (field(value) if value != '""' else value).encode() + b"\n"
        direct, ours = reader_and_ours(athena, line)
        assert direct is None or (ours is not None and same(direct, ours)), (athena, value, direct, ours)


@settings(max_examples=300, deadline=None)
@given(st.sampled_from(sorted(DIRECT_TYPES)),
       st.text(st.sampled_from("0123456789+-.eE:TZ \t naif,\"x\u00a0"), max_size=24))
def test_any_text_the_reader_types_lands_as_our_converter_makes_it(athena: str, value: str) -> None:
    direct, ours = reader_and_ours(athena, field(value).encode() + b"\n")
    assert direct is None or (ours is not None and same(direct, ours)), (athena, value, direct, ours)


def test_decimal_is_not_read_directly() -> None:
    """The CSV reader lands 123456789.1 in a decimal(10,2), eleven digits: decimals go through the text."""
    assert "decimal(10,2)" not in DIRECT_TYPES
    line = b"123456789.1\n"
    typed = pacsv.read_csv(pa.BufferReader(line), read_options=pacsv.ReadOptions(column_names=["c"]),
                           convert_options=pacsv.ConvertOptions(column_types={"c": pa.decimal128(10, 2)}))
    assert typed.num_rows == 1  # what it would have let through


COLUMNS = [("id", "NUMERIC"), ("day", "DATE"), ("at", "DATETIME"), ("name", "CHARACTER"), ("ok", "BOOLEAN"),
           ("amount", "NUMERIC")]
LAYOUT = json.dumps([{"columnName": name, "dataType": kind} for name, kind in COLUMNS]).encode()


def read(data: bytes, policy: str = "fail") -> tuple[pa.Table, TypedCsvReader]:
    schema = build_schema(parse_layout(LAYOUT), {"id": "bigint", "amount": "decimal(12,2)"})
    reader = TypedCsvReader(LocalStream(io.BytesIO(data), len(data)), schema, policy, block_size=256,
                            workers=2)
    return pa.Table.from_batches(list(reader), reader.arrow_schema), reader


def clean_rows(first: int, count: int) -> list[str]:
    return [f'{n},2024-02-{n % 28 + 1:02d},2024-02-29 12:00:{n % 60:02d}.5,"n, {n}",'
            f'{"true" if n % 2 else "F"},{n}.25' for n in range(first, first + count)]


def test_clean_pieces_are_typed_by_the_reader(monkeypatch) -> None:
    reads: list[bool] = []
    original = TypedCsvReader._read_piece

    def spy(self, text, options):
        reads.append(options is self._direct_options)
        return original(self, text, options)

    monkeypatch.setattr(TypedCsvReader, "_read_piece", spy)
    table, reader = read(("\n".join(clean_rows(1, 200)) + "\n").encode())
    assert reads and all(reads)  # every piece read once, typed
    assert reader.rows == 200 and table.column("id").to_pylist() == list(range(1, 201))
    assert table.schema.field("at").type == pa.timestamp("ms")
    assert table.schema.field("amount").type == pa.decimal128(12, 2)
    assert str(table.column("amount")[0].as_py()) == "1.25"
    assert table.column("ok").to_pylist()[:2] == [True, False]


def test_a_value_the_reader_refuses_sends_the_rest_through_the_text(monkeypatch) -> None:
    """Padding and a finer fraction land as our converters make them; a bad value is named by its row."""
    lines = clean_rows(1, 60) + ["61, 2024-03-01 ,2024-03-01 10:00:00.123456,x,yes, 7.5"] + clean_rows(62, 60)
    data = ("\n".join(lines) + "\n").encode()
    table, reader = read(data)
    assert reader.rows == 121 and not reader._read_direct  # text from there on
    row = table.slice(60, 1).to_pylist()[0]
    assert row["day"].isoformat() == "2024-03-01" and row["at"].isoformat() == "2024-03-01T10:00:00.123000"
    assert str(row["amount"]) == "7.50" and row["ok"] is True
    # the same rows, read as text all along
    monkeypatch.setattr(typed_csv, "DIRECT_TYPES", frozenset())
    as_text, _ = read(data)
    assert as_text.equals(table)

    monkeypatch.undo()
    bad = clean_rows(1, 90) + ["91,2024-13-01,2024-03-01 10:00:00,x,yes,1"] + clean_rows(92, 10)
    with pytest.raises(BadValueError) as caught:
        read(("\n".join(bad) + "\n").encode())
    assert caught.value.row == 91 and caught.value.column == "day"
    nulled, reader = read(("\n".join(bad) + "\n").encode(), "null")
    assert reader.bad_values == {"day": 1} and nulled.num_rows == 101
    assert nulled.column("day")[90].as_py() is None
