"""Parquet's choices per column, made from the first row group: no dictionary for a column whose values
never repeat (an id), one for every other; no compression for a column of such values that the codec
barely shrinks (random hex ids under Snappy); and the values the same either way (read back by DuckDB and
pyarrow)."""

from __future__ import annotations

import io
import json
import random
import uuid
from pathlib import Path

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq

from transforms.ci360.layout import parse_layout
from transforms.formats.columnar import (
    DICTIONARY_MIN_SAMPLE,
    PLAIN_MIN_SAMPLE,
    compression_by_column,
    dictionary_columns,
    write_parquet,
)
from transforms.formats.registry import WriteContext, WriteOptions
from transforms.schema.columns import build_schema
from transforms.sources.local import LocalStream

LAYOUT = json.dumps([{"columnName": name, "dataType": kind} for name, kind in
                     [("id", "NUMERIC"), ("uuid", "STRING"), ("city", "STRING"), ("total", "NUMERIC")]])
CITIES = ["Cary", "Raleigh", "Durham", "Apex"]


def rows(count: int, repeat_ids_after: int | None = None,
         random_uuids: bool = False) -> list[tuple[int, str, str, str]]:
    """Rows whose uuid column is made of counters (Snappy shrinks it well) or, with ``random_uuids``,
    random version 4 UUIDs (as CI360's identity ids are: Snappy barely shrinks them)."""
    out = []
    draw = random.Random(21)
    for row in range(count):
        ident = row % repeat_ids_after if repeat_ids_after and row >= repeat_ids_after else row
        total = "" if row % 11 == 0 else f"{row % 50}.25"
        text = (str(uuid.UUID(int=draw.getrandbits(128), version=4)) if random_uuids
                else f"{ident:08x}-0000-4000-8000-{row:012x}")
        out.append((10_000_000 + ident, text, CITIES[row % 4], total))
    return out


def convert(lines: list[tuple[int, str, str, str]], row_group_bytes: int = 32 * 1024 * 1024,
            compression: str | None = None) -> bytes:
    data = "".join(",".join(str(v) for v in line) + "\n" for line in lines).encode()
    layout = parse_layout(LAYOUT.encode())
    ctx = WriteContext(layout, build_schema(layout, {}),
                       WriteOptions(row_group_bytes=row_group_bytes, compression=compression))
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


def codecs(parquet: bytes) -> dict[str, list[str]]:
    """Per column, each row group's codec as the file's metadata declares it to readers."""
    metadata = pq.ParquetFile(io.BytesIO(parquet)).metadata
    return {metadata.schema.column(c).name: [metadata.row_group(g).column(c).compression
                                             for g in range(metadata.num_row_groups)]
            for c in range(metadata.num_columns)}


def test_random_ids_are_stored_uncompressed_and_every_other_column_with_the_codec(tmp_path: Path) -> None:
    lines = rows(100_000, random_uuids=True)
    parquet = convert(lines, row_group_bytes=1024 * 1024)
    chosen = codecs(parquet)
    groups = len(chosen["uuid"])
    assert groups > 1  # chosen once, from the first row group, for every row group alike
    assert chosen == {"uuid": ["UNCOMPRESSED"] * groups, "id": ["SNAPPY"] * groups,
                      "city": ["SNAPPY"] * groups, "total": ["SNAPPY"] * groups}
    assert read_back(parquet, tmp_path) == expected(lines)
    assert pq.read_table(io.BytesIO(parquet)).column("uuid").to_pylist() == [line[1] for line in lines]


def test_ids_the_codec_shrinks_keep_it() -> None:
    # Counters (Snappy halves them), and random ids under a codec with entropy coding (ZSTD, gzip).
    assert set(sum(codecs(convert(rows(100_000))).values(), [])) == {"SNAPPY"}
    for codec, declared in [("zstd", "ZSTD"), ("gzip", "GZIP")]:
        parquet = convert(rows(100_000, random_uuids=True), compression=codec)
        assert set(sum(codecs(parquet).values(), [])) == {declared}
    none = convert(rows(100_000, random_uuids=True), compression="none")
    assert set(sum(codecs(none).values(), [])) == {"UNCOMPRESSED"}


def test_a_small_sample_keeps_the_codec() -> None:
    # Fewer bytes of values than PLAIN_MIN_SAMPLE: too few to judge the codec by.
    count = PLAIN_MIN_SAMPLE // 36 - 1
    assert set(sum(codecs(convert(rows(count, random_uuids=True))).values(), [])) == {"SNAPPY"}


def test_the_choice_skips_dictionary_columns_and_booleans() -> None:
    draw = random.Random(7)
    noise = pa.array([draw.random() for _ in range(3 * DICTIONARY_MIN_SAMPLE * 4)])  # random doubles
    flags = pa.array([draw.random() < 0.5 for _ in range(len(noise))])
    table = pa.table({"noise": noise, "flags": flags, "again": noise})
    assert compression_by_column(table, "snappy", ["flags", "again"]) == {
        "noise": "none", "flags": "snappy", "again": "snappy"}
    assert compression_by_column(table, "snappy", True) == "snappy"
    assert compression_by_column(table, "none", ["flags"]) == "none"
