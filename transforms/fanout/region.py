"""The records a typed range owns, as one readable stream for the format's writer.

Range i owns the records that start after the first LF outside quotes at or after its start (range 0:
from byte 0), up to and including the first LF outside quotes at or after its end (or the end of the
file). Consecutive ranges thus tile the file's records exactly: where one stops, the next begins. The
bytes before the first boundary are skipped (they finish the previous range's last record); after the
window, the file is read on (``open_tail``) only until the record in progress ends.

While it streams, the range's quote parity (over exactly its window) is counted for ``check_ranges``,
and every byte handed out is checked by ``QuoteCheck``. An unproven record stops the stream early
(``problem`` says why): the caller discards what was written.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager
from typing import Any

from transforms.fanout.boundaries import QuoteCheck, first_record_end


class RangeRecords:
    """File-like (``read``, ``chunks``) over the records of one range, given its start state."""

    def __init__(self, head: Any, open_tail: Callable[[], AbstractContextManager[Any]] | None, *,
                 first: bool, start_state: int) -> None:
        self._head = head
        self._open_tail = open_tail  # None for the file's last range
        self._first = first
        self._start_state = start_state
        self.parity = 0  # quotes in the window, mod 2
        self.check = QuoteCheck()
        self.owns_records = first
        self.tail_bytes = 0
        self.closed = False
        self._head_done = False
        self._pieces = self._generate()
        self._buffer = b""

    @property
    def problem(self) -> str | None:
        return self.check.problem

    def readable(self) -> bool:
        return True

    def _generate(self) -> Iterator[bytes]:
        state = self._start_state
        skipping = not self._first
        for chunk in self._head.chunks():
            self.parity ^= chunk.count(b'"') & 1
            if skipping:
                end, state = first_record_end(chunk, state)
                if end is None:
                    continue
                skipping, self.owns_records = False, True
                chunk = chunk[end + 1:]
            state ^= chunk.count(b'"') & 1
            if not self._emit(chunk):
                return
            if chunk:
                yield chunk
        self._head_done = True
        if skipping:
            return  # no record starts in this window: the previous range's last record covers it
        if self._open_tail is not None:
            with self._open_tail() as tail:
                for chunk in tail.chunks():
                    end, after = first_record_end(chunk, state)
                    piece = chunk if end is None else chunk[:end + 1]
                    state = after
                    self.tail_bytes += len(piece)
                    if not self._emit(piece):
                        return
                    yield piece
                    if end is not None:
                        break
        self.check.finish()

    def finish_window(self) -> None:
        """Read the rest of the window after an early stop, so that ``parity`` covers all of it."""
        if self._head_done:
            return
        for chunk in self._head.chunks():
            self.parity ^= chunk.count(b'"') & 1
        self._head_done = True

    def close(self) -> None:
        """Stop reading (the tail's connection, if one is open, is released)."""
        self._pieces.close()
        self.closed = True

    def _emit(self, piece: bytes) -> bool:
        self.check.feed(piece)
        return self.check.problem is None

    def chunks(self, size: int = 1024 * 1024) -> Iterator[bytes]:
        if self._buffer:
            head, self._buffer = self._buffer, b""
            yield head
        yield from self._pieces

    def read(self, size: int = -1) -> bytes:
        if size is None or size < 0:
            return b"".join(self.chunks())
        while len(self._buffer) < size:
            piece = next(self._pieces, None)
            if piece is None:
                break
            self._buffer = self._buffer + piece if self._buffer else piece
        out, self._buffer = self._buffer[:size], self._buffer[size:]
        return out
