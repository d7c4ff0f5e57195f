from __future__ import annotations

import csv
import io

import pytest

from transforms.formats.records import RecordCounter

CASES = [
    b"",
    b"a,b\n",
    b"a,b",
    b"a,b\nc,d",
    b'a,"multi\nline",b\nc,d\n',
    b'a,"has ""quotes"" and\nnewline"\nx\n',
    b'"",""\n"\n"\n',
    b"\n",
]


@pytest.mark.parametrize("data", CASES)
@pytest.mark.parametrize("chunk", [1, 2, 3, 7, 1 << 20])
def test_counts_what_a_csv_reader_counts_however_the_stream_is_cut(data: bytes, chunk: int) -> None:
    counter = RecordCounter()
    for start in range(0, len(data), chunk):
        counter.feed(data[start:start + chunk])
    expected = sum(1 for _ in csv.reader(io.StringIO(data.decode(), newline="")))
    assert counter.records == expected
