"""The same file landed by one function and by the fan-out (plan, every range, check, finalize, called
directly against moto over HTTP, the data read through real presigned URLs) lands the same: the same
bytes for the CSV family and JSON Lines (decompressed), the same rows in the same order for Parquet
(read with DuckDB and pyarrow) and ORC (pyarrow; DuckDB has no ORC reader here).

The data puts a quoted line break within a few bytes of every range boundary (before, on and after it)
and a record across every boundary, so some ranges start inside a quoted field and are redone.

What moto does not prove: it checks no checksum and no ``If-Match`` on ``UploadPartCopy``
(``CopySourceIfMatch``) nor ``IfNoneMatch`` on completion; the checksum combination is proven here by
comparing our combined CRC32 with one computed over the bytes read back.
"""

from __future__ import annotations

import bz2
import dataclasses
import gzip
import zlib
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa
import pyarrow.orc as orc
import pyarrow.parquet as pq
import pytest
from backports import zstd

from devstack.localstack import webhook_payload
from tests.support.helpers import JSON_LAYOUT, Stack
from transforms.aws import client
from transforms.ci360.payload import parse_job
from transforms.fanout.local import run_in_process
from transforms.jobs.pipeline import run
from transforms.jobs.services import Services
from transforms.settings import MIB, Settings
from transforms.sources.http import HttpSource

RANGE = 1 * MIB
RANGES = 9
ROW = b'0d4a1b2c-0000-4000-8000-%012d,%d,"o\'neil, %d",2024-01-%02d\n'


def straddling_audience(ranges: int = RANGES, range_bytes: int = RANGE) -> bytes:
    """Rows of about 70 bytes; near every boundary B, a record whose quoted field holds a line break at
    B + d (d cycling through -3..3, so some boundaries fall inside the quotes), and every boundary inside
    some record."""
    out = bytearray()
    number = 0
    for boundary in range(range_bytes, ranges * range_bytes, range_bytes):
        offset = (boundary // range_bytes) % 7 - 3
        while len(out) < boundary - 200:
            out += ROW % (number, number, number, number % 28 + 1)
            number += 1
        head = b'id-%d,%d,"say ""hi""' % (number, number)
        filler = boundary + offset - len(out) - len(head)
        out += head + b"x" * filler + b'\nthere",2024-02-02\n'
        number += 1
    while len(out) < ranges * range_bytes - 5000:
        out += ROW % (number, number, number, number % 28 + 1)
        number += 1
    return bytes(out)


@pytest.fixture(scope="module")
def audience() -> bytes:
    data = straddling_audience()
    for boundary in range(RANGE, RANGES * RANGE, RANGE):  # the data is what it claims to be
        assert b"\n" in data[boundary - 3:boundary + 4]
    return data


def settings_for(stack: Stack) -> Settings:
    base = Settings.from_env({"s3_bucket_name": stack.target, "part_size_mb": "5",
                              "source_host_allowlist": "http://127.0.0.1:*"})
    return dataclasses.replace(base, fanout_range_bytes=RANGE, fanout_min_bytes=1,
                               download_range_bytes=256 * 1024, row_group_bytes=2 * MIB)


def services_for(settings: Settings) -> Services:
    return Services(s3=client("s3"), http=HttpSource.from_settings(settings))


def land_both(stack: Stack, data: bytes, name: str) -> tuple[dict[str, Any], dict[str, Any], Settings]:
    data_url, metadata_url = stack.stage(data, JSON_LAYOUT)
    settings = settings_for(stack)
    services = services_for(settings)
    one = parse_job(webhook_payload(data_url, metadata_url, f"one/{name}"), settings)
    fan = parse_job(webhook_payload(data_url, metadata_url, f"fan/{name}"), settings)
    single = run(one, settings, services.s3, services.http).to_json()
    fanned = run_in_process(fan, settings, services)
    return single, fanned, settings


def assert_nothing_staged(stack: Stack) -> None:
    assert not [key for key in stack.target_keys() if "_ci360-fanout-" in key]
    assert stack.pending_uploads() == []


def crc32_of(data: bytes) -> str:
    import base64

    return base64.b64encode(zlib.crc32(data).to_bytes(4, "big")).decode()


DECOMPRESS = {"csv": lambda b: b, "csv.gz": gzip.decompress, "csv.bz2": bz2.decompress,
              "csv.zst": zstd.decompress, "jsonl": lambda b: b, "jsonl.gz": gzip.decompress}


@pytest.mark.parametrize("name", ["audience.csv", "audience.csv.gz", "audience.csv.bz2", "audience.csv.zst",
                                  "audience.jsonl", "audience.jsonl.gz"])
def test_one_object_formats_land_the_same_bytes(stack: Stack, audience: bytes, name: str) -> None:
    single, fanned, _ = land_both(stack, audience, name)
    fmt = single["format"]
    one, fan = stack.landed(f"one/{name}"), stack.landed(f"fan/{name}")
    assert DECOMPRESS[fmt](fan) == DECOMPRESS[fmt](one)
    assert fanned["rows"] == single["rows"] > 100_000
    assert fanned.get("recordsWithLineBreaks") == single.get("recordsWithLineBreaks")
    assert fanned["fanout"]["ranges"] == RANGES
    assert [(item["key"], item["bytes"]) for item in fanned["objects"]] == [(f"fan/{name}", len(fan))]
    assert fanned["checksum"]["value"] == crc32_of(fan)  # our combined CRC32 is the object's
    assert fanned["bytesWritten"] == len(fan)
    if fmt.startswith("jsonl"):
        assert fanned["fanout"]["redone"] > 0  # some boundaries fell inside quotes: those ranges were redone
    if fmt.endswith(("gz", "bz2", "zst")):
        assert fanned["fanout"]["bytesCarried"] > 0  # ranges compressed below 5 MiB: carried, exactly
    assert_nothing_staged(stack)
    assert sorted(stack.target_keys()) == sorted([f"one/{name}", f"fan/{name}"])


def _columnar(stack: Stack, keys: list[str], tmp_path: Path, reader: str) -> tuple[pa.Table, list[Path]]:
    paths = []
    for number, key in enumerate(keys):
        path = tmp_path / f"{number:05d}.{reader}"
        path.write_bytes(stack.landed(key))
        paths.append(path)
    read = pq.read_table if reader == "parquet" else orc.read_table
    return pa.concat_tables([read(path) for path in paths]), paths


@pytest.mark.parametrize("name", ["audience.parquet", "audience.orc"])
def test_columnar_formats_land_the_same_rows_in_order(stack: Stack, audience: bytes, name: str,
                                                      tmp_path: Path) -> None:
    landed_once, fanned, _ = land_both(stack, audience, name)
    reader = landed_once["format"]
    parts = [item["key"] for item in fanned["objects"]]
    stem = name.rsplit(".", 1)[0]
    assert parts == [f"fan/{stem}-{index:05d}-of-{RANGES:05d}.{reader}" for index in range(RANGES)]
    assert sorted(key for key in stack.target_keys() if key.startswith("fan/")) == parts  # nothing else
    (tmp_path / "one").mkdir()
    (tmp_path / "fan").mkdir()
    one, _ = _columnar(stack, [f"one/{name}"], tmp_path / "one", reader)
    fan, _ = _columnar(stack, parts, tmp_path / "fan", reader)
    assert fan.schema == one.schema
    assert fan.to_pylist() == one.to_pylist()
    assert fanned["rows"] == landed_once["rows"] == one.num_rows
    assert fanned["schema"] == landed_once["schema"]
    assert fanned["fanout"]["redone"] > 0
    for item in fanned["objects"]:
        assert item["checksum"]["value"] == crc32_of(stack.landed(item["key"]))
    if reader == "parquet":  # a second, independent reader over the folder as Athena would see it
        glob = str(tmp_path / "fan" / "*.parquet")
        # the files in name order (DuckDB's glob is sorted), rows in file order
        by_duckdb = duckdb.sql(f"SELECT * FROM read_parquet('{glob}')").fetchall()
        single = duckdb.sql(f"SELECT * FROM read_parquet('{tmp_path / 'one' / '00000.parquet'}')").fetchall()
        assert by_duckdb == single
    assert_nothing_staged(stack)


def test_range_objects_of_5_mib_and_more_are_copied_inside_s3(stack: Stack) -> None:
    """Ranges of 6 MiB: every part of the assembled object is an UploadPartCopy, nothing read back."""
    data = straddling_audience(ranges=3, range_bytes=6 * MIB)
    data_url, metadata_url = stack.stage(data, JSON_LAYOUT)
    settings = dataclasses.replace(settings_for(stack), fanout_range_bytes=6 * MIB)
    services = services_for(settings)
    fan = parse_job(webhook_payload(data_url, metadata_url, "fan/audience.csv"), settings)
    one = parse_job(webhook_payload(data_url, metadata_url, "one/audience.csv"), settings)
    fanned = run_in_process(fan, settings, services)
    run(one, settings, services.s3, services.http)
    assert stack.landed("fan/audience.csv") == stack.landed("one/audience.csv")
    assert fanned["fanout"]["ranges"] == 3 and fanned["fanout"]["bytesCarried"] == 0
    assert fanned["checksum"]["value"] == crc32_of(stack.landed("fan/audience.csv"))
    assert_nothing_staged(stack)
