"""Counting CSV records in a byte stream without parsing it, and the records Athena's CSV tables split.

A newline inside a quoted field (RFC 4180) does not end a record, so a plain newline count would be
wrong for exactly the exports that need quoting. Quote parity is enough: an escaped quote (``""``)
toggles twice and changes nothing.

This runs over every byte of a passthrough, so it makes one pass in C over each chunk (``translate``
keeps only quotes and line breaks, a few bytes per record) and works on what is left. Measured on the
bench's CSV: about 0.9 s of CPU per GB, against 1.6 s when the quotes were split apart in Python.
"""

from __future__ import annotations

import re

from transforms.errors import UnprocessableError

_NOT_QUOTE_OR_BREAK = bytes(b for b in range(256) if b not in b'"\n\r')
_QUOTED = re.compile(rb'"[^"]*"')
_MARKED_RECORD = re.compile(rb"E+\n")


class RecordCounter:
    """Feed chunks in order; ``records`` is the number of complete or final CSV records seen, and
    ``records_with_line_breaks`` how many of them hold a line break (LF or CR) inside a quoted field.

    Such a record is valid CSV, but Athena's CSV SerDes split rows at every line break, so each one
    shifts the columns of the rows after it in a CSV table. Telling the user how many there are is the
    honest answer; the bytes themselves are CI360's and stay as they are.
    """

    def __init__(self) -> None:
        self._newlines = 0  # LFs outside quotes: records ended
        self._in_quotes = False
        self._last_byte: int | None = None
        self._with_breaks = 0  # ended records that hold a quoted line break
        self._pending = False  # the record in progress holds one

    def feed(self, chunk: bytes) -> None:
        if not chunk:
            return
        self._last_byte = chunk[-1]
        if not self._in_quotes and b'"' not in chunk:  # no field is quoted: every LF ends a record
            self._end_records(chunk.count(b"\n"))
            return
        self._feed_reduced(chunk.translate(None, _NOT_QUOTE_OR_BREAK))

    def _end_records(self, newlines: int) -> None:
        self._newlines += newlines
        if newlines and self._pending:
            self._with_breaks += 1
            self._pending = False

    def _feed_reduced(self, reduced: bytes) -> None:
        """The chunk reduced to its quotes, LFs and CRs (every other byte changes nothing here)."""
        ends_in_quotes = self._in_quotes ^ (reduced.count(b'"') % 2 == 1)
        # Close a quoted field cut by the chunk's end (and reopen it next time) so that quotes pair up.
        balanced = (b'"' if self._in_quotes else b"") + reduced + (b'"' if ends_in_quotes else b"")
        self._in_quotes = ends_in_quotes
        # A quoted field without a break is two adjacent quotes (with its escaped quotes, an even run),
        # and removing adjacent pairs keeps every break on its side of the quotes.
        paired = balanced.replace(b'""', b"")
        if b'"' not in paired:  # the common case: what is left are the breaks between fields
            self._end_records(paired.count(b"\n"))
            return
        # Every quoted field left holds a break: mark it, drop CRs outside quotes (records end at LF).
        marked = (b"E" if self._pending else b"") + _QUOTED.sub(b"E", paired).replace(b"\r", b"")
        self._newlines += marked.count(b"\n")
        self._with_breaks += len(_MARKED_RECORD.findall(marked))
        self._pending = b"E" in marked[marked.rfind(b"\n") + 1:]

    @property
    def records(self) -> int:
        """Newline-terminated records, plus a last one that lacks its newline."""
        if self._last_byte is None:
            return 0
        return self._newlines + (0 if self._last_byte == ord("\n") else 1)

    @property
    def records_with_line_breaks(self) -> int:
        """Records with a line break inside a quoted field, the last one included."""
        return self._with_breaks + (1 if self._pending else 0)

    def check_complete(self) -> None:
        """At the end of the data: a quoted field still open means the file is cut or malformed, and
        no count of its records would be true (a CSV reader would take the rest as one field)."""
        if self._in_quotes:
            record = self._newlines + 1
            raise UnprocessableError(f"the data file ends inside a quoted field: the quote opened in record "
                                     f"{record} is never closed", [{"record": record}])
