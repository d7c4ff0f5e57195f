"""Counting CSV records in a byte stream without parsing it.

A newline inside a quoted field (RFC 4180) does not end a record, so a plain newline count would be
wrong for exactly the exports that need quoting. Quote parity is enough: an escaped quote (``""``)
toggles twice and changes nothing.
"""

from __future__ import annotations

_NOT_QUOTE_OR_NEWLINE = bytes(b for b in range(256) if b not in b'"\n')


class RecordCounter:
    """Feed chunks in order; ``records`` is the number of complete or final CSV records seen."""

    def __init__(self) -> None:
        self._newlines = 0
        self._in_quotes = False
        self._last_byte: int | None = None

    def feed(self, chunk: bytes) -> None:
        if not chunk:
            return
        if b'"' not in chunk:
            if not self._in_quotes:
                self._newlines += chunk.count(b"\n")
        else:
            # Only quotes and newlines matter: strip the rest (in C), then every piece between quotes
            # is a run of newlines, and those outside quotes are the even (or odd) ones.
            pieces = chunk.translate(None, _NOT_QUOTE_OR_NEWLINE).split(b'"')
            self._newlines += sum(map(len, pieces[1 if self._in_quotes else 0::2]))
            if len(pieces) % 2 == 0:  # an odd number of quotes flips the state
                self._in_quotes = not self._in_quotes
        self._last_byte = chunk[-1]

    @property
    def records(self) -> int:
        """Newline-terminated records, plus a last one that lacks its newline."""
        if self._last_byte is None:
            return 0
        return self._newlines + (0 if self._last_byte == ord("\n") else 1)
