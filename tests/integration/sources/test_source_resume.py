"""Resumable downloads over real HTTP on 127.0.0.1: drops, short bodies and objects that change.

These are the single stream's (``download_connections=1``, and the fallback of the ranged download);
tests/integration/sources/test_ranged_source.py has the ranged download's own.
"""

from __future__ import annotations

import gzip

import pytest

from tests.support.faultserver import Script
from tests.support.helpers import HEADER, Stack, api_gateway_event, big_audience, invoke, payload_with_data


@pytest.fixture(autouse=True)
def single_stream(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("download_connections", "1")


@pytest.mark.parametrize("key", ["resumed.csv", "resumed.csv.gz", "resumed.parquet"])
def test_dropped_connections_resume_and_land_identical_bytes(stack: Stack, fault_server, monkeypatch,
                                                            key: str) -> None:
    monkeypatch.setenv("part_size_mb", "5")
    data = big_audience(200_000)  # ~12 MB, dropped three times on the way
    url = fault_server.url("/drops", Script(body=data, etag='"v1"', cuts=[3_000_001, 4_000_000, 17]))
    response = invoke(api_gateway_event(payload_with_data(stack, url, key)))
    assert response.status == 200, response.body
    assert response.body["bytesRead"] == len(data)
    assert response.body["rows"] == 200_000
    if key.endswith(".csv"):
        assert stack.landed(key) == HEADER + data
    elif key.endswith(".gz"):
        assert gzip.decompress(stack.landed(key)) == HEADER + data
    requests = fault_server.requests_for("/drops")
    assert len(requests) == 4 and "range" not in requests[0]
    assert [h["if-match"] for h in requests[1:]] == ['"v1"'] * 3  # pinned to the same object
    # Each resume starts at or before where the last connection dropped (bytes only partly read
    # are fetched again), and after where the previous one started.
    starts = [int(h["range"].removeprefix("bytes=").rstrip("-")) for h in requests[1:]]
    assert 0 < starts[0] <= 3_000_001 < starts[1] + 4_000_000 and starts[0] < starts[1] <= starts[2]


def test_object_changing_between_ranges_fails_and_lands_nothing(stack: Stack, fault_server) -> None:
    url = fault_server.url("/changes", Script(body=big_audience(100_000), etag='"v1"', cuts=[1_000_000],
                                              etag_after_first='"v2"'))
    response = invoke(api_gateway_event(payload_with_data(stack, url, "changed.csv")))
    assert response.status == 502, response.body
    assert "changed" in response.body["error"]["message"]
    assert response.body["error"]["details"][0] == {"file": "data", "upstreamStatus": 412}
    assert stack.target_keys() == [] and stack.pending_uploads() == []


def test_a_body_that_keeps_ending_short_fails_after_bounded_retries(stack: Stack, fault_server,
                                                                    monkeypatch) -> None:
    monkeypatch.setenv("resume_attempts", "2")
    monkeypatch.setenv("part_size_mb", "5")
    data = big_audience(200_000)
    url = fault_server.url("/short", Script(body=data, etag='"v1"', cuts=[6_000_000, 10, 10]))
    response = invoke(api_gateway_event(payload_with_data(stack, url, "short.csv")))
    assert response.status == 502, response.body
    assert "broke off after 6000020 of 14177780 bytes" in response.body["error"]["message"]  # 6 MB + 10 + 10
    assert len(fault_server.requests_for("/short")) == 3
    assert stack.target_keys() == [] and stack.pending_uploads() == []
