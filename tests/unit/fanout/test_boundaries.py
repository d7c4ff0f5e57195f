"""Record boundaries of ranges cut anywhere: the records of all ranges, concatenated, are the file's.

Ranges are simulated in memory exactly as range functions read them (a window's chunks, then the file
past the window until the record in progress ends), speculating start state 0 and redoing a range with
its true state when the prefix XOR of the parities says so, as ``check_ranges`` does.
"""

from __future__ import annotations

import csv
import io
from contextlib import contextmanager

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from transforms.fanout.boundaries import QuoteCheck, RangeCounts, combine_counts, true_start_states
from transforms.fanout.region import RangeRecords
from transforms.formats.records import RecordCounter


class Chunks:
    """A window's stream: ``chunks()`` in pieces of ``size`` bytes."""

    def __init__(self, data: bytes, size: int) -> None:
        self._data, self._size, self._at = data, size, 0

    def chunks(self, size: int = 0):
        while self._at < len(self._data):
            piece = self._data[self._at:self._at + self._size]
            self._at += len(piece)
            yield piece


def land(data: bytes, cuts: list[int], chunk: int, states: list[int]) -> list[RangeRecords]:
    bounds = [0, *cuts, len(data)]
    landed = []
    for index, (start, end) in enumerate(zip(bounds, bounds[1:], strict=False)):
        last = index == len(bounds) - 2

        @contextmanager
        def tail(end: int = end):
            yield Chunks(data[end:], chunk)

        records = RangeRecords(Chunks(data[start:end], chunk), None if last else tail, first=index == 0,
                               start_state=states[index])
        records.body = records.read()  # type: ignore[attr-defined]
        records.finish_window()
        landed.append(records)
    return landed


def land_exactly(data: bytes, cuts: list[int], chunk: int) -> tuple[list[RangeRecords], int]:
    """Speculate 0, then redo each wrong range with its true state; (ranges, how many were redone)."""
    first = land(data, cuts, chunk, [0] * (len(cuts) + 1))
    true = true_start_states([records.parity for records in first])
    second = land(data, cuts, chunk, true)
    redone = sum(1 for state in true if state)
    for before, after in zip(first, second, strict=True):
        assert before.parity == after.parity  # a range's parity does not depend on its start state
    return second, redone


field = st.one_of(
    st.text(st.sampled_from('ab,"\n\r é'), max_size=12).map(lambda text: '"' + text.replace('"', '""') + '"'),
    st.text(st.sampled_from("abc é1"), max_size=8),
)
record = st.lists(field, min_size=1, max_size=4).map(",".join)


@st.composite
def csv_files(draw):
    lines = draw(st.lists(record, min_size=1, max_size=30))
    newline = draw(st.sampled_from(["\n", "\r\n"]))
    text = newline.join(lines) + draw(st.sampled_from([newline, ""]))
    data = text.encode()
    cuts = sorted(set(draw(st.lists(st.integers(1, max(1, len(data) - 1)), max_size=8))))
    cuts = [cut for cut in cuts if 0 < cut < len(data)]
    return data, cuts, draw(st.integers(1, 17))


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(csv_files())
def test_the_records_of_all_ranges_are_the_files_records(case):
    data, cuts, chunk = case
    ranges, _ = land_exactly(data, cuts, chunk)
    assert all(records.problem is None for records in ranges), [r.problem for r in ranges]
    assert b"".join(records.body for records in ranges) == data  # type: ignore[attr-defined]
    whole = list(csv.reader(io.StringIO(data.decode(), newline="")))
    pieces = [row for records in ranges
              for row in csv.reader(io.StringIO(records.body.decode(), newline=""))]  # type: ignore[attr-defined]
    assert pieces == whole


@settings(max_examples=300, deadline=None)
@given(csv_files())
def test_csv_counts_combine_to_one_counters(case):
    data, cuts, chunk = case
    bounds = [0, *cuts, len(data)]
    per_range = []
    for start, end in zip(bounds, bounds[1:], strict=False):
        counts = RangeCounts()
        for piece in Chunks(data[start:end], chunk).chunks():
            counts.feed(piece)
        per_range.append(counts)
    combined = combine_counts([counts.to_json() for counts in per_range], data[-1] if data else None)
    counter = RecordCounter()
    counter.feed(data)
    assert combined.records == counter.records
    assert combined.records_with_line_breaks == counter.records_with_line_breaks
    assert not combined.end_in_quotes


@pytest.mark.parametrize("data", [
    b'a,b"c,d\n',  # a quote inside an unquoted field: pyarrow reads it literally
    b'"ab"c,d\n',  # text after a closing quote: pyarrow runs it into the field
    b'x,y\n"open\n',  # a quoted field never closed
])
def test_stray_quotes_are_unproven(data):
    check = QuoteCheck()
    for piece in (data[:3], data[3:]):
        check.feed(piece)
    check.finish()
    assert check.problem


@pytest.mark.parametrize("data", [b'"a""b",""\n', b'x,"1\n2",y\r\n"",z', b'"""",a\n'])
def test_well_formed_quotes_are_proven_however_they_are_cut(data):
    for cut in range(len(data) + 1):
        check = QuoteCheck()
        check.feed(data[:cut])
        check.feed(data[cut:])
        check.finish()
        assert check.problem is None, (cut, check.problem)


def test_a_range_with_no_record_start_owns_nothing():
    data = b'a,"' + b"x\n" * 20 + b'"\nb,c\n'
    ranges, _ = land_exactly(data, [5, 12], 4)
    assert [records.owns_records for records in ranges] == [True, False, True]
    assert [records.body for records in ranges] == [data[:-4], b"", b"b,c\n"]  # type: ignore[attr-defined]
