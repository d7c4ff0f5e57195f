"""The CI360 metadata file: the column layout of the headerless data file.

Two layouts are seen in SAS's connectors (CONTRACT.md): a JSON array of ``{"columnName", "dataType"}``
objects, and, in older ones, a single CSV header line. Both become the same ``Layout``.
"""

from __future__ import annotations

import csv
import io
import json
from dataclasses import dataclass
from typing import Any

from transforms.errors import LayoutError


@dataclass(frozen=True)
class Column:
    name: str
    data_type: str | None = None  # CI360's own type name, as sent; None in the CSV layout


@dataclass(frozen=True)
class Layout:
    columns: tuple[Column, ...]
    source_format: str  # "json" or "csv": which of the two metadata layouts it came from

    @property
    def names(self) -> list[str]:
        return [column.name for column in self.columns]

    def header_line(self) -> bytes:
        """The CSV header row for the data, quoted per RFC 4180 where a name needs it."""
        buffer = io.StringIO()
        csv.writer(buffer, lineterminator="\n").writerow(self.names)
        return buffer.getvalue().encode("utf-8")


def _field(entry: dict[str, Any], wanted: str) -> Any:
    """Look a key up case-insensitively: the exact spelling CI360 uses is only partly published."""
    for name, value in entry.items():
        if isinstance(name, str) and name.strip().lower() == wanted:
            return value
    return None


def _from_json(document: Any) -> list[Column]:
    if isinstance(document, dict):
        # Tolerate a wrapper object such as {"columns": [...]}.
        inner = _field(document, "columns")
        if not isinstance(inner, list):
            raise LayoutError("the metadata file is a JSON object without a 'columns' array")
        document = inner
    if not isinstance(document, list):
        raise LayoutError("the metadata file is JSON but not an array of columns")
    columns = []
    for position, entry in enumerate(document, start=1):
        if not isinstance(entry, dict):
            raise LayoutError(f"metadata column {position} is not an object")
        name = _field(entry, "columnname") or _field(entry, "name")
        if not isinstance(name, str) or not name.strip():
            raise LayoutError(f"metadata column {position} has no columnName")
        data_type = _field(entry, "datatype") or _field(entry, "type")
        if any(0xD800 <= ord(ch) <= 0xDFFF for ch in name + str(data_type or "")):
            # A lone surrogate (a JSON escape such as \ud800) cannot be written out as UTF-8.
            raise LayoutError(f"metadata column {position} is not valid Unicode text")
        columns.append(Column(name.strip(), str(data_type).strip() if data_type else None))
    return columns


def _from_csv(text: str) -> list[Column]:
    first_line = text.splitlines()[0] if text else ""
    try:
        names = next(csv.reader([first_line]), [])
    except csv.Error as exc:  # a field past the csv module's limit (128 KiB) is no column name
        raise LayoutError(f"the metadata header line cannot be read as CSV ({exc})") from None
    if any(not name.strip() for name in names):
        raise LayoutError("the metadata header line has an empty column name")
    return [Column(name.strip()) for name in names]


def parse_layout(raw: bytes) -> Layout:
    """Parse either layout; refuse anything that does not name at least one column, each once."""
    try:
        text = raw.decode("utf-8-sig").strip()
    except UnicodeDecodeError:
        raise LayoutError("the metadata file is not UTF-8 text") from None
    if not text:
        raise LayoutError("the metadata file is empty")
    if text[0] in "[{":
        try:
            document = json.loads(text)
        except json.JSONDecodeError as exc:
            raise LayoutError(f"the metadata file is not valid JSON ({exc.msg} at line {exc.lineno})"
                              ) from None
        except RecursionError:
            raise LayoutError("the metadata file nests JSON too deeply") from None
        columns, source_format = _from_json(document), "json"
    else:
        columns, source_format = _from_csv(text), "csv"
    if not columns:
        raise LayoutError("the metadata file lists no columns")
    seen: set[str] = set()
    for column in columns:
        if column.name in seen:
            raise LayoutError(f"the metadata file lists column {column.name!r} twice")
        seen.add(column.name)
    return Layout(tuple(columns), source_format)
