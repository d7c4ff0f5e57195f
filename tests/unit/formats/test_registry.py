from __future__ import annotations

import io

import pytest

from transforms.ci360.layout import parse_layout
from transforms.formats.registry import (
    Format,
    Registry,
    WriteContext,
    WriteOptions,
    copy_csv,
    format_for_key,
    registered_formats,
)
from transforms.formats.tables import CSV_TABLE
from transforms.schema.columns import build_schema


@pytest.mark.parametrize(("key", "name"), [
    ("a.csv", "csv"), ("A.CSV", "csv"), ("a.csv.gz", "csv.gz"), ("a.gz", "csv.gz"), ("x/a.CSV.GZ", "csv.gz"),
    ("a.csv.bz2", "csv.bz2"), ("a.csv.zst", "csv.zst"), ("a.txt", "csv"), ("noext", "csv"),
    ("a.parquet", "parquet"), ("a.orc", "orc"), ("a.jsonl", "jsonl"), ("a.jsonl.gz", "jsonl.gz"),
])
def test_format_is_chosen_by_extension(key: str, name: str) -> None:
    assert format_for_key(key).name == name


def test_a_registered_format_slots_in_and_the_longest_suffix_wins() -> None:
    # Registered into a registry of its own that starts as the connector's: the shared one is never touched.
    formats = Registry(registered_formats())
    fake = Format("x.csv", (".x.csv",), "text/plain", copy_csv, CSV_TABLE)
    formats.register(fake)
    assert formats.format_for_key("a.x.csv") is fake  # ".x.csv" and ".csv" both match: the longer one wins
    assert formats.format_for_key("a.csv").name == "csv" and formats.format_for_key("a.y.csv").name == "csv"
    assert format_for_key("a.x.csv").name == "csv" and fake not in registered_formats()


class Chunks:
    def __init__(self, *parts: bytes) -> None:
        self.parts = parts

    def chunks(self):
        return iter(self.parts)


def test_copy_csv_writes_header_then_bytes_and_counts_records() -> None:
    sink = io.BytesIO()
    layout = parse_layout(b"a,b")
    ctx = WriteContext(layout, build_schema(layout), WriteOptions())
    report = copy_csv(Chunks(b"1,2\n3,", b'"x\ny"\n'), sink, ctx)
    assert sink.getvalue() == b'a,b\n1,2\n3,"x\ny"\n'
    assert report.rows == 2
