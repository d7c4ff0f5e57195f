"""The Parquet writer's options on our own row groups: CPU of the encoding thread and the object's size.

``python -m bench.parquet_options CSV`` reads the CSV once (bench/data.py's layout, our typed reader and
row groups, as ``write_parquet`` gathers them), then writes those row groups again and again into a
sink that only counts bytes, once per option set, rounds alternating; it prints the lowest CPU of the
writing thread per GB of CSV and the object's size. Only the encoding is timed: parsing and converting
are the same whatever the options. For issue 21 (less CPU per GB for ``.parquet``): where the encoder's
CPU goes and what each option would cost in size, before any of them is changed.
"""

from __future__ import annotations

import io
import os
import sys
import time
from typing import Any

from bench.contender import _NotDeployed

sys.meta_path.insert(0, _NotDeployed())  # type: ignore[arg-type]  (no pandas or numpy, as deployed)

import pyarrow as pa  # noqa: E402
import pyarrow.parquet as pq  # noqa: E402

from bench import data  # noqa: E402
from transforms.ci360.layout import parse_layout  # noqa: E402
from transforms.formats import columnar  # noqa: E402
from transforms.formats.typed_csv import TypedCsvReader  # noqa: E402
from transforms.schema.columns import build_schema  # noqa: E402

ROUNDS = 3
VARIANTS: list[tuple[str, dict[str, Any]]] = [
    ("snappy, Arrow's defaults (a dictionary and the codec on every column)", {"compression": "snappy"}),
    ("zstd (level 1, Arrow's default level)", {"compression": "zstd"}),
    ("no compression", {"compression": "none"}),
    ("snappy, no dictionary", {"compression": "snappy", "use_dictionary": False}),
    ("snappy, dictionary pages up to 256 KiB (1 MiB)", {"compression": "snappy",
                                                        "dictionary_pagesize_limit": 256 * 1024}),
    ("snappy, no statistics", {"compression": "snappy", "write_statistics": False}),
    ("snappy, write_batch_size 8192 (1024)", {"compression": "snappy", "write_batch_size": 8192}),
]


class CountingSink(io.RawIOBase):
    def __init__(self) -> None:
        self.n = 0

    def writable(self) -> bool:
        return True

    def write(self, b: Any) -> int:
        size = memoryview(b).nbytes
        self.n += size
        return size


def encode(schema: pa.Schema, groups: list[pa.Table], options: dict[str, Any]) -> tuple[float, int]:
    sink = CountingSink()
    started = time.thread_time()
    writer = pq.ParquetWriter(sink, schema, coerce_timestamps="ms", allow_truncated_timestamps=True,
                              use_deprecated_int96_timestamps=False, **options)
    for group in groups:
        writer.write_table(group, row_group_size=group.num_rows)
    writer.close()
    return time.thread_time() - started, sink.n


def main() -> int:
    path = sys.argv[1]
    size = os.path.getsize(path)
    schema = build_schema(parse_layout(data.metadata_json()))
    with open(path, "rb") as handle:
        reader = TypedCsvReader(handle, schema)
        groups = list(columnar._row_groups(reader, 32 * 1024 * 1024))
    dictionary = columnar.dictionary_columns(groups[0])
    variants = VARIANTS + [("snappy, the writer's choices per column (dictionaries, codecs)", {
        "use_dictionary": dictionary,
        "compression": columnar.compression_by_column(groups[0], "snappy", dictionary)})]
    best: dict[str, tuple[float, int]] = {}
    for _ in range(ROUNDS):
        for label, options in variants:
            cpu, out = encode(reader.arrow_schema, groups, options)
            best[label] = min(best.get(label, (cpu, out)), (cpu, out))
    base_cpu, base_size = best[VARIANTS[0][0]]
    print(f"{size:,} bytes of CSV, {reader.rows:,} rows, {len(groups)} row groups; lowest of {ROUNDS} rounds")
    print("| options | encoder CPU s per GB of CSV | vs the first | object MB | vs the first |")
    print("|---|---:|---:|---:|---:|")
    for label, _ in variants:
        cpu, out = best[label]
        print(f"| {label} | {cpu / (size / 1e9):.2f} | {cpu / base_cpu:.2f}x | {out / 1e6:.1f} | "
              f"{out / base_size:.2f}x |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
