"""Counting CSV records in a byte stream without parsing it.

A newline inside a quoted field (RFC 4180) does not end a record, so a plain newline count would be
wrong for exactly the exports that need quoting. Quote parity is enough: an escaped quote (``""``)
toggles twice and changes nothing.
"""

from __future__ import annotations

import re

from transforms.errors import UnprocessableError

_NOT_QUOTE_OR_NEWLINE = bytes(b for b in range(256) if b not in b'"\n')


class RecordCounter:
    """Feed chunks in order; ``records`` is the number of complete or final CSV records seen."""

    def __init__(self) -> None:
        self._newlines = 0
        self._in_quotes = False
        self._last_byte: int | None = None
        self._line_breaks = QuotedLineBreaks()

    def feed(self, chunk: bytes) -> None:
        if not chunk:
            return
        if b'"' not in chunk:
            self._line_breaks.feed(chunk)
            if not self._in_quotes:
                self._newlines += chunk.count(b"\n")
        else:
            # Only quotes and newlines matter: strip the rest (in C), then every piece between quotes
            # is a run of newlines, and those outside quotes are the even (or odd) ones.
            reduced = chunk.translate(None, _NOT_QUOTE_OR_NEWLINE)
            self._line_breaks.feed(chunk, reduced)
            pieces = reduced.split(b'"')
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

    @property
    def records_with_line_breaks(self) -> int:
        """Records with a line break (LF or CR) inside a quoted field: see ``QuotedLineBreaks``."""
        return self._line_breaks.records


    def check_complete(self) -> None:
        """At the end of the data: a quoted field still open means the file is cut or malformed, and
        no count of its records would be true (a CSV reader would take the rest as one field)."""
        if self._in_quotes:
            record = self._newlines + 1
            raise UnprocessableError(f"the data file ends inside a quoted field: the quote opened in record "
                                     f"{record} is never closed", [{"record": record}])


_NOT_QUOTE_OR_BREAK = bytes(b for b in range(256) if b not in b'"\n\r')
_QUOTED = re.compile(rb'"[^"]*"')
_MARKED_RECORD = re.compile(rb"E+\n")


class QuotedLineBreaks:
    """Counts records that hold a line break inside a quoted field.

    Such a record is valid CSV (RFC 4180), but Athena's CSV SerDes split rows at every line break,
    so each one shifts the columns of the rows after it in a CSV table. Telling the user how many
    there are is the honest answer; the bytes themselves are CI360's and stay as they are.

    Fast on the common case: with the chunk reduced to its quotes and line breaks, a quoted field
    without a break is two adjacent quotes, and removing adjacent pairs keeps every remaining
    character on its side of the quotes. What is left is small (the record-ending newlines and any
    quoted breaks), and only that is searched.
    """

    def __init__(self) -> None:
        self.count = 0
        self._in_quotes = False
        self._pending = False  # the record in progress has a quoted line break

    def feed(self, chunk: bytes, reduced_to_quotes_and_newlines: bytes | None = None) -> None:
        """``reduced_to_quotes_and_newlines``: the chunk without any other byte, if already made."""
        if not self._in_quotes and b'"' not in chunk:
            if self._pending and b"\n" in chunk:
                self.count += 1
                self._pending = False
            return
        if reduced_to_quotes_and_newlines is not None and b"\r" not in chunk:
            reduced = reduced_to_quotes_and_newlines  # the same bytes as ours, for a chunk without CR
        else:
            reduced = chunk.translate(None, _NOT_QUOTE_OR_BREAK)
        ends_in_quotes = self._in_quotes ^ (reduced.count(b'"') % 2 == 1)
        # Close a quoted field cut by the chunk's end (and reopen it next time) so quotes pair up.
        reduced = (b'"' if self._in_quotes else b"") + reduced + (b'"' if ends_in_quotes else b"")
        self._in_quotes = ends_in_quotes
        reduced = reduced.replace(b'""', b"")
        if b'"' not in reduced:  # no quoted break in this chunk
            if self._pending and b"\n" in reduced:
                self.count += 1
                self._pending = False
            return
        # Every quoted field left holds a break: mark it, drop CRs outside quotes (records end at LF).
        marked = (b"E" if self._pending else b"") + _QUOTED.sub(b"E", reduced).replace(b"\r", b"")
        self.count += len(_MARKED_RECORD.findall(marked))
        self._pending = b"E" in marked[marked.rfind(b"\n") + 1:]

    @property
    def records(self) -> int:
        """Records counted so far, plus a last one that lacks its newline."""
        return self.count + (1 if self._pending else 0)
