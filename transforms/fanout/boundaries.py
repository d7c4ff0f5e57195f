"""Exact record boundaries in a CSV cut at arbitrary byte offsets (FANOUT.md, "Boundaries").

Under RFC 4180 a byte is inside a quoted field exactly when an odd number of ``"`` precede it (an
escaped quote, ``""``, toggles twice). So a range that knows whether its first byte is inside quotes
(its *start state*) can find its first record boundary alone: the first LF outside quotes. The start
state of range i is the XOR of the quote parities of ranges 0..i-1: each range reports its parity,
and the true states follow by a prefix XOR (``true_start_states``).

The parity model holds only for well-formed quoting. pyarrow's reader (the one-function path) takes
a quote inside an unquoted field literally (``a,b"c,d`` is three fields) and runs text after a closing
quote into the field (``"ab"c`` is ``abc``); parity would misplace the boundaries of both.
``QuoteCheck`` proves that every quote of a range's records is an opening quote at a field's start, a
closing quote at a field's end, or half of an escaped pair; when it cannot, the range is *unproven*
and the job falls back to one function rather than guess.

The CSV family passes bytes through, so its ranges need no boundary at all; only its record counts
depend on the start state, and ``RangeCounts`` keeps them for both states (``combine_counts``).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from transforms.formats.records import RecordCounter

QUOTE = ord('"')
LF = ord("\n")
_QUOTE_BYTE = pa.scalar(QUOTE, pa.uint8())  # of the data's own type: an int64 scalar made pyarrow widen
# every byte first (76 ms per MiB instead of 1)
# What may precede an opening quote, or follow a closing one: a delimiter, a line break, or the other
# half of an escaped quote.
_FIELD_EDGE = pa.array([ord(","), ord("\n"), ord("\r"), QUOTE], pa.uint8())
_NOT_QUOTE_OR_BREAK = bytes(b for b in range(256) if b not in b'"\n\r')


def first_record_end(data: bytes, state: int, start: int = 0) -> tuple[int | None, int]:
    """(index of the first LF at or after ``start`` outside quotes, 0) given the quote ``state`` at
    ``start``; (None, the state at the end of ``data``) when there is none."""
    pos = start
    while True:
        newline = data.find(b"\n", pos)
        if newline < 0:
            return None, state ^ (data.count(b'"', pos) & 1)
        state ^= data.count(b'"', pos, newline) & 1
        if state == 0:
            return newline, 0
        pos = newline + 1


def true_start_states(parities: Sequence[int]) -> list[int]:
    """Each range's start state from every range's quote parity (range 0 starts outside quotes)."""
    states, state = [], 0
    for parity in parities:
        states.append(state)
        state ^= parity
    return states


class QuoteCheck:
    """Feed a range's records in order (they start at a record boundary, outside quotes); ``problem``
    names the first quote the parity model cannot account for, or the region's unterminated quote.

    One pass in C per chunk (pyarrow compute): quote positions, their neighbours, one membership test.
    A chunk without quotes costs one ``count``.
    """

    def __init__(self) -> None:
        self._state = 0  # inside quotes after what was fed
        self._prev: int | None = None  # the byte before the next chunk (None: the region's start)
        self._dangling = False  # the last chunk ended on a closing quote: the next byte must end the field
        self.offset = 0  # bytes fed
        self.problem: str | None = None

    def feed(self, chunk: bytes) -> None:
        if self.problem is not None or not chunk:
            return
        if self._dangling:
            self._dangling = False
            if chunk[0] not in b',\n\r"':
                self._fail(0, "a closing quote followed by text")
                return
        quotes = chunk.count(b'"')
        if quotes:
            self._check(chunk, quotes)
        self._state ^= quotes & 1
        self._prev = chunk[-1]
        self.offset += len(chunk)

    def _check(self, chunk: bytes, quotes: int) -> None:
        data = pa.Array.from_buffers(pa.uint8(), len(chunk), [None, pa.py_buffer(chunk)])
        positions = pc.indices_nonzero(pc.equal(data, _QUOTE_BYTE))
        raw = memoryview(positions.buffers()[1]).cast("Q")[positions.offset:positions.offset + quotes]
        opening, closing = (raw[0::2], raw[1::2]) if self._state == 0 else (raw[1::2], raw[0::2])
        opening_at = _uint64(opening)
        closing_at = _uint64(closing)
        if len(opening_at) and opening_at[0].as_py() == 0:
            if self._prev is not None and self._prev not in b',\n\r"':
                self._fail(0, "a quote inside an unquoted field")
                return
            opening_at = opening_at.slice(1)
        if len(closing_at) and closing_at[len(closing_at) - 1].as_py() == len(chunk) - 1:
            self._dangling = True  # its next byte is the next chunk's first
            closing_at = closing_at.slice(0, len(closing_at) - 1)
        for at, shift, what in ((opening_at, -1, "a quote inside an unquoted field"),
                                (closing_at, 1, "a closing quote followed by text")):
            if not len(at):
                continue
            step = pa.scalar(1, pa.uint64())
            neighbours = pc.take(data, pc.add(at, step) if shift > 0 else pc.subtract(at, step))
            fits = pc.is_in(neighbours, value_set=_FIELD_EDGE)
            if not pc.all(fits).as_py():
                first = pc.index(fits, False).as_py()
                self._fail(at[first].as_py(), what)
                return

    def finish(self) -> None:
        """The region ended (at a record boundary, or at the end of the file)."""
        if self.problem is None and self._state:
            self.problem = f"the records end inside a quoted field (after {self.offset} bytes)"

    def _fail(self, position: int, what: str) -> None:
        self.problem = f"{what} at byte {self.offset + position} of the range's records"


def _uint64(view: memoryview) -> pa.Array:
    data = view.tobytes()
    return pa.Array.from_buffers(pa.uint64(), len(data) // 8, [None, pa.py_buffer(data)])


class _Counter(RecordCounter):
    """``RecordCounter`` started in a given state, whose partial counts can be read and combined."""

    def __init__(self, in_quotes: bool, pending: bool) -> None:
        super().__init__()
        self._in_quotes = in_quotes
        self._pending = pending

    def snapshot(self) -> dict[str, Any]:
        return {"newlines": self._newlines, "withBreaks": self._with_breaks, "pending": self._pending,
                "inQuotes": self._in_quotes}


class RangeCounts:
    """A CSV range's record counts for either start state, and either "the record in progress holds a
    line break" state, fed once: each chunk is reduced to its quotes and line breaks in one C pass
    (``translate``), which is all a ``RecordCounter`` looks at, and the four counters read that."""

    def __init__(self) -> None:
        self._counters = {(state, pending): _Counter(bool(state), pending)
                          for state in (0, 1) for pending in (False, True)}
        self.last_byte: int | None = None
        self.parity = 0

    def feed(self, chunk: bytes | bytearray | memoryview) -> None:
        if not len(chunk):
            return
        reduced = bytes(chunk).translate(None, _NOT_QUOTE_OR_BREAK) if not isinstance(chunk, bytes) \
            else chunk.translate(None, _NOT_QUOTE_OR_BREAK)
        self.last_byte = chunk[-1]
        self.parity ^= reduced.count(b'"') & 1
        if reduced:
            for counter in self._counters.values():
                counter.feed(reduced)

    def to_json(self) -> dict[str, Any]:
        return {f"{state}{'p' if pending else ''}": counter.snapshot()
                for (state, pending), counter in self._counters.items()}


@dataclass(frozen=True)
class CombinedCounts:
    records: int
    records_with_line_breaks: int
    end_in_quotes: bool
    newlines: int


def combine_counts(ranges: Iterable[dict[str, Any]], last_byte: int | None) -> CombinedCounts:
    """The whole file's counts from each range's ``RangeCounts.to_json()``, in order, and the file's
    last byte (None: empty): what one ``RecordCounter`` over every byte would have said."""
    state, pending, newlines, with_breaks = 0, False, 0, 0
    for counts in ranges:
        part = counts[f"{state}{'p' if pending else ''}"]
        newlines += part["newlines"]
        with_breaks += part["withBreaks"]
        pending, state = part["pending"], int(part["inQuotes"])
    records = newlines + (0 if last_byte in (None, LF) else 1)
    return CombinedCounts(records, with_breaks + (1 if pending else 0), bool(state), newlines)
