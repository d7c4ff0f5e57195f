"""ORC written in tables smaller than a stripe: stripes as large as before, the same rows and values."""

from __future__ import annotations

import io
import json

import pyarrow.orc as orc
import pytest

from transforms.ci360.layout import parse_layout
from transforms.formats import columnar
from transforms.formats.registry import WriteContext, WriteOptions
from transforms.schema.columns import build_schema
from transforms.sources.local import LocalStream

LAYOUT = json.dumps([{"columnName": name, "dataType": kind} for name, kind in
                     [("id", "NUMERIC"), ("city", "STRING"), ("total", "NUMERIC"), ("at", "DATETIME")]])
STRIPE = 256 * 1024


def land(data: bytes) -> bytes:
    layout = parse_layout(LAYOUT.encode())
    ctx = WriteContext(layout, build_schema(layout, {}), WriteOptions(row_group_bytes=STRIPE))
    sink = io.BytesIO()
    columnar.write_orc(LocalStream(io.BytesIO(data), len(data)), sink, ctx)  # type: ignore[arg-type]
    return sink.getvalue()


def test_smaller_writes_keep_the_stripes_and_the_values(monkeypatch: pytest.MonkeyPatch) -> None:
    data = "".join(f"{row},city{row % 97},{row % 1000}.5,2024-01-{row % 28 + 1:02d} 10:00:00\n"
                   for row in range(400_000)).encode()
    whole = orc.ORCFile(io.BytesIO(land(data)))  # tables of a stripe's size (ORC_WRITE_BYTES above it)
    monkeypatch.setattr(columnar, "ORC_WRITE_BYTES", 16 * 1024)
    small = orc.ORCFile(io.BytesIO(land(data)))
    assert whole.nstripes > 2 and small.nstripes == whole.nstripes
    assert small.read().equals(whole.read())
    assert small.nrows == 400_000
