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

MAX_COLUMNS = 500  # the default of the max_columns setting: CI360 layouts have tens of columns
MAX_NAME_CHARS = 255  # Glue's and Hive's limit on a column name


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


def _check_count(count: int, max_columns: int) -> None:
    """Memory (columnar writers keep buffers per column) and the result grow with the column count."""
    if count > max_columns:
        raise LayoutError(f"the metadata file lists {count} columns, more than this deployment's limit of "
                          f"{max_columns} (the max_columns setting)",
                          [{"columns": count, "limit": max_columns}])


def _check_name(name: str, position: int) -> None:
    if len(name) > MAX_NAME_CHARS:
        raise LayoutError(f"metadata column {position}'s name is longer than {MAX_NAME_CHARS} characters")
    if any(ord(ch) < 32 or ch in "<>" for ch in name):
        # Markup or control characters: an error page (HTML, XML) rather than a layout.
        raise LayoutError(f"metadata column {position}'s name holds markup or control characters: the "
                          "metadata file does not look like a column layout")


def _from_json(document: Any, max_columns: int) -> list[Column]:
    if isinstance(document, dict):
        # Tolerate a wrapper object such as {"columns": [...]}.
        inner = _field(document, "columns")
        if not isinstance(inner, list):
            raise LayoutError("the metadata file is a JSON object without a 'columns' array")
        document = inner
    if not isinstance(document, list):
        raise LayoutError("the metadata file is JSON but not an array of columns")
    _check_count(len(document), max_columns)
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
        _check_name(name.strip(), position)
        columns.append(Column(name.strip(), str(data_type).strip() if data_type else None))
    return columns


def _from_csv(text: str, max_columns: int) -> list[Column]:
    """One header line of column names (quoted per RFC 4180 where a name needs it), nothing else."""
    if text.startswith("<"):
        raise LayoutError("the metadata file is an HTML or XML document, not a column layout "
                          "(an error page, most likely)")
    try:
        rows = csv.reader(io.StringIO(text, newline=""))
        names = next(rows, [])
        if next(rows, None) is not None:
            raise LayoutError("the metadata file has more than one line: a CSV layout is one header line")
    except csv.Error as exc:  # a field past the csv module's limit (128 KiB) is no column name
        raise LayoutError(f"the metadata header line cannot be read as CSV ({exc})") from None
    _check_count(len(names), max_columns)
    if any(not name.strip() for name in names):
        raise LayoutError("the metadata header line has an empty column name")
    for position, name in enumerate(names, start=1):
        _check_name(name.strip(), position)
    return [Column(name.strip()) for name in names]


def parse_layout(raw: bytes, max_columns: int = MAX_COLUMNS) -> Layout:
    """Parse either layout; refuse anything that does not look like one (an error page, markup), that
    names no column, a column twice, or more than ``max_columns`` columns."""
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
        columns, source_format = _from_json(document, max_columns), "json"
    else:
        columns, source_format = _from_csv(text, max_columns), "csv"
    if not columns:
        raise LayoutError("the metadata file lists no columns")
    seen: set[str] = set()
    for column in columns:
        if column.name in seen:
            raise LayoutError(f"the metadata file lists column {column.name!r} twice")
        seen.add(column.name)
    return Layout(tuple(columns), source_format)
