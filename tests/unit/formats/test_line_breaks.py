"""Counting records with a line break inside a quoted field (what Athena's CSV tables cannot read)."""

from __future__ import annotations

import csv
import io

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from transforms.formats.records import RecordCounter


def expected_count(data: bytes) -> int:
    """Records that Python's csv module (RFC 4180) reads with a CR or LF inside a field."""
    rows = csv.reader(io.StringIO(data.decode(), newline=""))
    return sum(1 for row in rows if any("\n" in field or "\r" in field for field in row))


def count(data: bytes, chunk: int) -> int:
    counter = RecordCounter()
    for start in range(0, len(data), chunk):
        counter.feed(data[start:start + chunk])
    return counter.records_with_line_breaks


CASES = [
    (b"", 0),
    (b"a,b\nc,d\n", 0),
    (b'a,"b"\n"c","d"\n', 0),
    (b'a,"multi\nline",b\nc,d\n', 1),
    (b'a,"one\nbreak","two\nbreaks"\nc,d\n', 1),  # one record, however many of its fields break
    (b'"cr\ronly"\n"crlf\r\ninside"\n', 2),
    (b'"x"\r\n"y"\r\n', 0),  # CRLF record ends are not inside a field
    (b'a,"has ""quotes"" and\nnewline"\nx\n', 1),
    (b'"",""\n"\n"\n', 1),
    (b'"""\n"""\n', 1),  # a field holding a quote, a newline and a quote
    (b'"a\nb"', 1),  # the last record lacks its newline
    (b'x\n"a\nb"\n"c\nd"\n"e"\n', 2),
]


@pytest.mark.parametrize(("data", "expected"), CASES)
@pytest.mark.parametrize("chunk", [1, 2, 3, 7, 1 << 20])
def test_counts_records_with_a_quoted_line_break_however_the_stream_is_cut(
        data: bytes, expected: int, chunk: int) -> None:
    assert expected_count(data) == expected  # the case table itself agrees with the csv module
    assert count(data, chunk) == expected


FIELD = st.one_of(
    st.text(alphabet='ab,"\n\r ', max_size=6).map(lambda s: '"' + s.replace('"', '""') + '"'),
    st.text(alphabet="ab ", max_size=4),
)
RECORD = st.lists(FIELD, min_size=1, max_size=4).map(",".join)


@settings(max_examples=300, deadline=None)
@given(records=st.lists(RECORD, max_size=8), final_newline=st.booleans(), chunk=st.integers(1, 9))
def test_agrees_with_the_csv_module(records: list[str], final_newline: bool, chunk: int) -> None:
    text = "\n".join(records) + ("\n" if final_newline and records else "")
    data = text.encode()
    assert count(data, chunk) == expected_count(data)


@settings(max_examples=300, deadline=None)
@given(records=st.lists(RECORD, max_size=8), final_newline=st.booleans(), chunk=st.integers(1, 9))
def test_counts_the_records_the_csv_module_reads(records: list[str], final_newline: bool, chunk: int) -> None:
    """Both counts come from one pass over each chunk; the record count must stay exact with it."""
    text = "\n".join(records) + ("\n" if final_newline and records else "")
    data = text.encode()
    counter = RecordCounter()
    for start in range(0, len(data), chunk):
        counter.feed(data[start:start + chunk])
    counter.check_complete()
    assert counter.records == sum(1 for _ in csv.reader(io.StringIO(text, newline="")))


def test_large_quoted_chunks() -> None:
    """A quoted export reduces to its record ends; a break in a later chunk still counts once."""
    counter = RecordCounter()
    row = b'"12345","a, b","c ""quoted"" d",,"x"\n'
    counter.feed(row * 50_000)
    counter.feed(b'"tail\nbreak"\n')
    assert counter.records_with_line_breaks == 1
    assert counter.records == 50_001
