"""The parallel ranged download over real HTTP on 127.0.0.1: moto's presigned URLs (a real S3
implementation of Range and If-Match) and the fault server (drops, changes, expiry, servers without
Range or ETag)."""

from __future__ import annotations

import gzip
import hashlib
import io

import duckdb
import pyarrow.parquet as pq
import pytest

from devstack.localstack import webhook_payload
from tests.support.faultserver import Script
from tests.support.helpers import (
    HEADER,
    JSON_LAYOUT,
    Stack,
    api_gateway_event,
    big_audience,
    invoke,
    payload_with_data,
)
from transforms.sources.http import HttpSource, SourceStream
from transforms.sources.ranged import open_ranged

MIB = 1024 * 1024


@pytest.fixture
def small_ranges(monkeypatch: pytest.MonkeyPatch) -> None:
    """1 MiB ranges over 3 connections: a ~12 MB file is a dozen ranges."""
    monkeypatch.setenv("download_connections", "3")
    monkeypatch.setenv("download_range_mb", "1")
    monkeypatch.setenv("part_size_mb", "5")


def _ranges(requests: list[dict[str, str]]) -> list[tuple[int, int]]:
    spans = []
    for headers in requests:
        first, _, last = headers["range"].removeprefix("bytes=").partition("-")
        spans.append((int(first), int(last)))
    return spans


@pytest.mark.parametrize("key", ["ranged.csv", "ranged.csv.gz", "ranged.parquet"])
def test_moto_presigned_url_in_ranges_lands_identical_bytes(stack: Stack, small_ranges: None,
                                                             key: str) -> None:
    data = big_audience(200_000)  # ~14 MB: 14 ranges of 1 MiB, the last one short
    data_url, metadata_url = stack.stage(data, JSON_LAYOUT)
    response = invoke(api_gateway_event(webhook_payload(data_url, metadata_url, key)))
    assert response.status == 200, response.body
    assert response.body["bytesRead"] == len(data) and response.body["rows"] == 200_000
    landed = stack.landed(key)
    if key.endswith(".csv"):
        assert hashlib.sha256(landed).digest() == hashlib.sha256(HEADER + data).digest()
    elif key.endswith(".gz"):
        assert gzip.decompress(landed) == HEADER + data
    else:
        table = pq.read_table(io.BytesIO(landed))
        assert table.num_rows == 200_000
        ids = table.column("external_id").to_pylist()
        assert ids == list(range(200_000))  # every range in its place, none twice
        con = duckdb.connect()
        con.execute("create table t as select * from read_parquet(?)", [_write_tmp(landed)])
        assert con.execute("select count(*), sum(external_id) from t").fetchone() == (
            200_000, sum(range(200_000)))


def _write_tmp(data: bytes) -> str:
    import tempfile

    with tempfile.NamedTemporaryFile(suffix=".parquet", delete=False) as handle:
        handle.write(data)
    return handle.name


def test_ranges_are_consecutive_pinned_by_etag_and_reassembled(stack: Stack, fault_server,
                                                               small_ranges: None) -> None:
    data = big_audience(150_000)
    url = fault_server.url("/ranged", Script(body=data, etag='"v1"'))
    response = invoke(api_gateway_event(payload_with_data(stack, url, "ranged.csv")))
    assert response.status == 200, response.body
    assert stack.landed("ranged.csv") == HEADER + data
    requests = fault_server.requests_for("/ranged")
    spans = sorted(_ranges(requests))
    assert spans[0] == (0, MIB - 1) and spans[-1][1] == len(data) - 1
    assert all(b[0] == a[1] + 1 for a, b in zip(spans, spans[1:], strict=False))  # no gap, no overlap
    assert len(spans) == -(-len(data) // MIB)
    assert "if-match" not in requests[0]  # the first answer's ETag pins all the others
    assert all(h["if-match"] == '"v1"' for h in requests[1:])
    # The client's connections open at once, counted by the server from accept to the client's close
    # (kept alive and reused, as with S3; none is closed here): never more than download_connections.
    assert fault_server.max_active <= 3


@pytest.mark.parametrize("script", [Script(body=b"", etag=None), Script(body=b"", etag='"v1"', ranges=False)],
                         ids=["no-etag-no-range", "etag-but-range-ignored"])
def test_a_server_without_range_or_etag_gets_one_get(stack: Stack, fault_server, small_ranges: None,
                                                     script: Script) -> None:
    data = big_audience(50_000)
    script.body = data
    url = fault_server.url("/plain", script)
    response = invoke(api_gateway_event(payload_with_data(stack, url, "plain.csv")))
    assert response.status == 200, response.body
    assert stack.landed("plain.csv") == HEADER + data
    assert len(fault_server.requests_for("/plain")) == 1


def test_a_range_without_etag_falls_back_to_one_get(stack: Stack, fault_server, small_ranges: None) -> None:
    data = big_audience(50_000)
    script = Script(body=data, etag='"v1"')
    url = fault_server.url("/noetag", script)
    # A 206 without an ETag cannot pin the other ranges: the ranged stream must not start.
    http = HttpSource()
    original = http._get

    def without_etag(url: str, file: str, headers: dict[str, str], deadline=None):
        response = original(url, file, headers, deadline)
        if response.status == 206:
            response.headers.discard("ETag")
        return response

    http._get = without_etag  # type: ignore[method-assign]
    with open_ranged(http, url, "data", connections=3, range_size=MIB) as stream:
        assert isinstance(stream, SourceStream)
        assert stream.read() == data
    assert [h.get("range") for h in fault_server.requests_for("/noetag")] == [f"bytes=0-{MIB - 1}", None]


def test_an_empty_object_is_an_empty_stream(stack: Stack, fault_server, small_ranges: None) -> None:
    url = fault_server.url("/empty", Script(body=b"", etag='"v1"'))
    response = invoke(api_gateway_event(payload_with_data(stack, url, "empty.csv")))
    assert response.status == 200, response.body
    assert stack.landed("empty.csv") == HEADER and response.body["rows"] == 0


def test_a_dropped_range_is_resumed_on_its_own(stack: Stack, fault_server, small_ranges: None) -> None:
    data = big_audience(150_000)
    url = fault_server.url("/drop", Script(body=data, etag='"v1"',
                                           range_cuts={2 * MIB: [1000], 2 * MIB + 1000: [500_000],
                                                                       5 * MIB: [0]}))
    response = invoke(api_gateway_event(payload_with_data(stack, url, "drop.parquet")))
    assert response.status == 200, response.body
    assert pq.read_table(io.BytesIO(stack.landed("drop.parquet"))).column("external_id").to_pylist() == \
        list(range(150_000))
    spans = _ranges(fault_server.requests_for("/drop"))
    resumed = [span for span in spans if span[0] not in range(0, len(data), MIB)]
    # Range 2 dropped twice (after 1000 bytes, then after 500,000 more); range 5 once, before any byte.
    assert sorted(resumed) == [(2 * MIB + 1000, 3 * MIB - 1), (2 * MIB + 501_000, 3 * MIB - 1)]
    assert spans.count((5 * MIB, 6 * MIB - 1)) == 2


def test_object_changed_mid_way_fails_with_412_and_lands_nothing(stack: Stack, fault_server,
                                                                 small_ranges: None) -> None:
    url = fault_server.url("/changed", Script(body=big_audience(150_000), etag='"v1"',
                                              etag_after_first='"v2"'))
    response = invoke(api_gateway_event(payload_with_data(stack, url, "changed.csv")))
    assert response.status == 502, response.body
    assert "changed while being read" in response.body["error"]["message"]
    assert response.body["error"]["details"][0] == {"file": "data", "upstreamStatus": 412}
    assert stack.target_keys() == [] and stack.pending_uploads() == []


def test_url_expiring_mid_way_fails_and_lands_nothing(stack: Stack, fault_server, small_ranges: None) -> None:
    url = fault_server.url("/expires", Script(body=big_audience(150_000), etag='"v1"', expire_after=4))
    response = invoke(api_gateway_event(payload_with_data(stack, url, "expired.csv")))
    assert response.status == 502, response.body
    assert "presigned URL may have expired" in response.body["error"]["message"]
    assert response.body["error"]["details"][0] == {"file": "data", "upstreamStatus": 403}
    assert "SECRETTOKEN" not in str(response.body) and "deadbeef" not in str(response.body)
    assert stack.target_keys() == [] and stack.pending_uploads() == []


def test_a_range_that_keeps_ending_short_fails_after_bounded_resumes(stack: Stack, fault_server,
                                                                     small_ranges: None, monkeypatch) -> None:
    monkeypatch.setenv("resume_attempts", "2")
    data = big_audience(150_000)
    url = fault_server.url("/short", Script(body=data, etag='"v1"', range_cuts={
        3 * MIB: [10], 3 * MIB + 10: [10], 3 * MIB + 20: [10], 3 * MIB + 30: [10]}))
    response = invoke(api_gateway_event(payload_with_data(stack, url, "short.csv")))
    assert response.status == 502, response.body
    assert f"broke off at byte {3 * MIB + 30} of {len(data)}" in response.body["error"]["message"]
    assert _ranges(fault_server.requests_for("/short")).count((3 * MIB + 20, 4 * MIB - 1)) == 1
    assert stack.target_keys() == [] and stack.pending_uploads() == []


def test_one_connection_is_one_plain_get(stack: Stack, fault_server, monkeypatch) -> None:
    monkeypatch.setenv("download_connections", "1")
    data = big_audience(50_000)
    url = fault_server.url("/single", Script(body=data, etag='"v1"'))
    response = invoke(api_gateway_event(payload_with_data(stack, url, "single.csv")))
    assert response.status == 200, response.body
    assert stack.landed("single.csv") == HEADER + data
    assert [h.get("range") for h in fault_server.requests_for("/single")] == [None]
