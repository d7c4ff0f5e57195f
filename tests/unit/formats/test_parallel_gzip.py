from __future__ import annotations

import gzip
import io
import os
import random
import zlib

import pytest

from transforms.formats.parallel_gzip import ParallelGzipWriter


def single_member(blob: bytes) -> bytes:
    """Decompress exactly one gzip member and insist nothing follows it."""
    decompressor = zlib.decompressobj(31)
    data = decompressor.decompress(blob) + decompressor.flush()
    assert decompressor.eof and decompressor.unused_data == b""
    return data


@pytest.mark.parametrize("size", [0, 1, 1000, 32 * 1024, 100_003, 1_000_000])
@pytest.mark.parametrize("block_size", [1024, 40_000, 1 << 20])
def test_round_trips_as_one_standard_gzip_member(size: int, block_size: int) -> None:
    rng = random.Random(size)
    data = bytes(rng.choice(b"abc,\n\"0123456789") for _ in range(size // 2)) + os.urandom(size - size // 2)
    sink = io.BytesIO()
    writer = ParallelGzipWriter(sink, level=6, workers=3, block_size=block_size)
    for start in range(0, len(data), 7777):
        writer.write(data[start:start + 7777])
    writer.close()
    blob = sink.getvalue()
    assert single_member(blob) == data
    assert gzip.decompress(blob) == data
    assert not sink.closed  # the trailer is written, the sink left to its owner


def test_ratio_stays_close_to_serial_gzip_thanks_to_the_primed_window() -> None:
    line = b"0d4a1b2c-0000-4000-8000-%012d,%d,person%d@example.com,2024-01-01\n"
    data = b"".join(line % (i, i, i % 977) for i in range(200_000))
    sink = io.BytesIO()
    writer = ParallelGzipWriter(sink, level=6, workers=2, block_size=256 * 1024)
    writer.write(data)
    writer.close()
    assert len(sink.getvalue()) < 1.02 * len(gzip.compress(data, 6))
