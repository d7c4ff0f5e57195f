"""What Athena returns for a CSV table over OpenCSVSerDe: an emulation, for tests, with no Java.

Athena engine v3 is Trino, whose CSV reader is "bug for bug compatible with OpenCSVSerde" (its own
words): OpenCSV 2.3's ``CSVParser`` with strictQuotes false and ignoreLeadingWhiteSpace true, as
Hive's OpenCSVSerde builds it, applied to one line at a time. This follows Trino's sources:

- ``CsvDeserializerFactory``: each property is its value's first character; ``separatorChar``
  defaults to ``,``, ``quoteChar`` to ``"`` and ``escapeChar`` to a backslash, and an escapeChar of
  ``"`` is turned into a backslash (Hive's quirk). Separator, quote and escape must differ, except
  that quote and escape may both be NUL (OpenCSV's "no character").
- ``TextLineReader``: a UTF-8 byte order mark is skipped; lines end at LF, CR or CR LF, also inside
  quotes (no multi-line records); a last line without its terminator counts.
- ``CsvDeserializer.parseLine``: the character loop below, line for line; an empty line is a row of
  nulls, missing trailing fields are null, extra fields are dropped, and a last field left inside
  quotes is null.
- ``skip.header.line.count`` skips that many lines first.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

_LINE_END = re.compile(r"\r\n|\r|\n")


def serde_characters(parameters: Mapping[str, str]) -> tuple[str, str, str]:
    """(separator, quote, escape) as Trino derives them from the SerDe parameters, or ValueError."""
    separator = parameters.get("separatorChar", ",")[:1] or ","
    quote = parameters.get("quoteChar", '"')[:1] or '"'
    escape = parameters.get("escapeChar", "\\")[:1] or "\\"
    if escape == '"':
        if "\\" in (separator, quote):
            raise ValueError("separator or quote cannot be a backslash when the escape is a quote")
        escape = "\\"
    if separator == "\0":
        raise ValueError("Separator cannot be the null character (ASCII 0)")
    if separator in (quote, escape):
        raise ValueError("Separator, quote and escape characters must differ")
    if (quote != "\0" or escape != "\0") and quote == escape:
        raise ValueError("Quote and escape character cannot be the same")
    return separator, quote, escape


def lines(data: bytes) -> list[str]:
    text = data.decode("utf-8")
    if text.startswith("\ufeff"):
        text = text[1:]
    parts = _LINE_END.split(text)
    if parts and parts[-1] == "":
        parts.pop()  # the terminator of the last line, not an empty line after it
    return parts


def _peek(line: str, position: int) -> str | None:
    return line[position + 1] if position + 1 < len(line) else None


def parse_line(line: str, columns: int, separator: str, quote: str, escape: str) -> list[str | None]:
    """One line as Trino's ``CsvDeserializer`` splits it into ``columns`` values."""
    values: list[str | None] = [None] * columns
    if not line or not columns:
        return values
    buffer: list[str] = []
    index = 0
    in_quotes = in_field = False
    position = 0
    while position < len(line) and index < columns:
        c = line[position]
        if c == escape:
            if in_quotes or in_field:
                following = _peek(line, position)
                if following in (quote, escape):
                    buffer.append(following)
                    position += 1
        elif c == quote:
            if (in_quotes or in_field) and _peek(line, position) == quote:
                buffer.append(quote)
                position += 1
            else:
                # OpenCSV's "embedded quote in the middle" case: a,bc"d"ef,g
                if (position > 2 and line[position - 1] != separator and len(line) > position + 1
                        and line[position + 1] != separator):
                    if buffer and all(ch.isspace() for ch in buffer):
                        buffer.clear()
                    else:
                        buffer.append(c)
                in_quotes = not in_quotes
            in_field = not in_field
        elif c == separator and not in_quotes:
            values[index] = "".join(buffer)
            index += 1
            buffer.clear()
            in_field = False
        else:
            buffer.append(c)
            in_field = True
        position += 1
    if index < columns and not in_quotes:
        values[index] = "".join(buffer)
    return values


def read_table(data: bytes, columns: int, serde_parameters: Mapping[str, str],
               table_parameters: Mapping[str, str] | None = None) -> list[list[str | None]]:
    """Every row Athena's CSV table returns for one object, as text (None for SQL NULL)."""
    separator, quote, escape = serde_characters(serde_parameters)
    skip = int((table_parameters or {}).get("skip.header.line.count", "0"))
    return [parse_line(line, columns, separator, quote, escape) for line in lines(data)[skip:]]
