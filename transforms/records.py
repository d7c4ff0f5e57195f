"""Counting CSV records in a byte stream without parsing it.

A newline inside a quoted field (RFC 4180) does not end a record, so a plain newline count would be
wrong for exactly the exports that need quoting. Quote parity is enough: an escaped quote (``""``)
toggles twice and changes nothing.
"""

from __future__ import annotations


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
            for index, piece in enumerate(chunk.split(b'"')):
                if index:
                    self._in_quotes = not self._in_quotes
                if not self._in_quotes:
                    self._newlines += piece.count(b"\n")
        self._last_byte = chunk[-1]

    @property
    def records(self) -> int:
        """Newline-terminated records, plus a last one that lacks its newline."""
        if self._last_byte is None:
            return 0
        return self._newlines + (0 if self._last_byte == ord("\n") else 1)
