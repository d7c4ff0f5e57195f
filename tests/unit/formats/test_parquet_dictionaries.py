"""Parquet's dictionaries chosen from the first row group: none for a column whose values never repeat
(an id), one for every other, and the values the same either way (read back by DuckDB and pyarrow)."""

from __future__ import annotations

import io
import json
from pathlib import Path

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq

from transforms.ci360.layout import parse_layout
from transforms.formats.columnar import DICTIONARY_MIN_SAMPLE, dictionary_columns, write_parquet
from transforms.formats.registry import WriteContext, WriteOptions
from transforms.schema.columns import build_schema
from transforms.sources.local import LocalStream

LAYOUT = json.dumps([{"columnName": name, "dataType": kind} for name, kind in
                     [("id", "NUMERIC"), ("uuid", "STRING"), ("city", "STRING"), ("total", "NUMERIC")]])
CITIES = ["Cary", "Raleigh", "Durham", "Apex"]


def rows(count: int, repeat_ids_after: int | None = None) -> list[tuple[int, str, str, str]]:
    out = []
    for row in range(count):
        ident = row % repeat_ids_after if repeat_ids_after and row >= repeat_ids_after else row
        total = "" if row % 11 == 0 else f"{row % 50}.25"
        out.append((10_000_000 + ident, f"{ident:08x}-0000-4000-8000-{row:012x}", CITIES[row % 4], total))
    return out


def convert(lines: list[tuple[int, str, str, str]], row_group_bytes: int = 32 * 1024 * 1024) -> bytes:
    data = "".join(",".join(str(v) for v in line) + "\n" for line in lines).encode()
    layout = parse_layout(LAYOUT.encode())
    ctx = WriteContext(layout, build_schema(layout, {}), WriteOptions(row_group_bytes=row_group_bytes))
    sink = io.BytesIO()
    write_parquet(LocalStream(io.BytesIO(data), len(data)), sink, ctx)  # type: ignore[arg-type]
    return sink.getvalue()


def dictionaries(parquet: bytes) -> dict[str, list[bool]]:
    """Per column, whether each row group's chunk starts with a dictionary page."""
    metadata = pq.ParquetFile(io.BytesIO(parquet)).metadata
    return {metadata.schema.column(c).name: [metadata.row_group(g).column(c).has_dictionary_page
                                             for g in range(metadata.num_row_groups)]
            for c in range(metadata.num_columns)}


def read_back(parquet: bytes, tmp_path: Path) -> list[tuple]:
    path = tmp_path / "out.parquet"
    path.write_bytes(parquet)
    with duckdb.connect() as con:
        return con.execute(f"SELECT id, uuid, city, total FROM '{path}'").fetchall()


def expected(lines: list[tuple[int, str, str, str]]) -> list[tuple]:
    return [(float(i), u, c, float(t) if t else None) for i, u, c, t in lines]


def test_ids_get_no_dictionary_and_repeating_columns_keep_theirs(tmp_path: Path) -> None:
    lines = rows(100_000)  # over 2 MiB of CSV: several pieces, so several row groups, each chosen alike
    parquet = convert(lines, row_group_bytes=256 * 1024)
    chosen = dictionaries(parquet)
    assert len(chosen["id"]) > 1
    assert chosen == {"id": [False] * len(chosen["id"]), "uuid": [False] * len(chosen["id"]),
                      "city": [True] * len(chosen["id"]), "total": [True] * len(chosen["id"])}
    assert read_back(parquet, tmp_path) == expected(lines)
    assert pq.read_table(io.BytesIO(parquet)).column("uuid").to_pylist() == [line[1] for line in lines]


def test_ids_that_repeat_after_the_sample_land_the_same(tmp_path: Path) -> None:
    # Unique in the first row group's sample, repeating later: plain values all along, none lost.
    lines = rows(90_000, repeat_ids_after=70_000)
    parquet = convert(lines)
    assert dictionaries(parquet)["id"] == [False]
    assert read_back(parquet, tmp_path) == expected(lines)


def test_a_small_file_keeps_every_dictionary(tmp_path: Path) -> None:
    lines = rows(DICTIONARY_MIN_SAMPLE - 1)
    parquet = convert(lines)
    assert all(chunks == [True] for chunks in dictionaries(parquet).values())
    assert read_back(parquet, tmp_path) == expected(lines)


def test_an_empty_audience_still_lands_its_schema() -> None:
    table = pq.read_table(io.BytesIO(convert([])))
    assert table.num_rows == 0 and table.column_names == ["id", "uuid", "city", "total"]


def test_the_choice_counts_values_not_nulls() -> None:
    unique_with_nulls = pa.array([None if i % 3 == 0 else i for i in range(3 * DICTIONARY_MIN_SAMPLE)])
    repeating = pa.array([i % 100 for i in range(3 * DICTIONARY_MIN_SAMPLE)])
    few = pa.array([None] * (3 * DICTIONARY_MIN_SAMPLE - 5) + [1, 2, 3, 4, 5])
    table = pa.table({"unique": unique_with_nulls, "repeating": repeating, "few": few})
    assert dictionary_columns(table) == ["repeating", "few"]
    assert dictionary_columns(table.select(["repeating", "few"])) is True
