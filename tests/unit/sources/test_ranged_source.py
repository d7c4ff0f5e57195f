"""The ranged download's read-ahead against the fault server (in this process, on 127.0.0.1), and its
settings. Downloads through moto's presigned URLs: tests/integration/sources/test_ranged_source.py."""

from __future__ import annotations

import concurrent.futures

import pytest

from tests.support.faultserver import Script
from transforms.sources.http import HttpSource
from transforms.sources.ranged import RangedStream, open_ranged

MIB = 1024 * 1024


def test_ranges_fetched_ahead_are_bounded_by_connections(fault_server) -> None:
    """Memory: however slow the reader, no more than ``connections`` ranges are fetched ahead of it."""
    data = bytes(range(256)) * (40 * 1024)  # 10 MiB: ten ranges of 1 MiB
    # Each range takes at least 0.15 s to arrive, so the first read always finds range 0 still
    # downloading (the read-ahead then grows to ``connections``); a fast range could be done already.
    url = fault_server.url("/bounded", Script(body=data, etag='"v1"', trickle=(256 * 1024, 0.05)))
    with open_ranged(HttpSource(backoff=0.01), url, "data", connections=3, range_size=MIB) as stream:
        assert isinstance(stream, RangedStream)
        assert stream.read(10) == data[:10]
        concurrent.futures.wait(list(stream._pending))  # everything the stream asked for so far
        # range 0 (being read) and three ahead: (connections + 1) ranges in memory at most
        assert len(fault_server.requests_for("/bounded")) == 4
        assert len(stream._pending) == 3
        rest = stream.read()
    assert data[:10] + rest == data
    assert len(fault_server.requests_for("/bounded")) == 10
    assert 2 <= fault_server.max_active <= 3


def test_a_slow_reader_keeps_two_ranges_ahead_and_a_waiting_one_gets_every_connection(fault_server) -> None:
    """Memory follows the slower side: a reader that never waits for the network (a columnar
    conversion) holds START_AHEAD ranges ahead, not ``connections``; one the network keeps waiting
    (a passthrough) is given one more connection each time it waits, up to ``connections``."""
    from transforms.sources.ranged import START_AHEAD

    data = bytes(range(256)) * (40 * 1024)  # 10 MiB: ten ranges of 1 MiB
    slow = fault_server.url("/slow-reader", Script(body=data, etag='"v1"'))
    got = []
    with open_ranged(HttpSource(backoff=0.01), slow, "data", connections=6, range_size=MIB) as stream:
        while True:
            concurrent.futures.wait(list(stream._pending))  # the reader is slower than every range
            piece = stream.read(MIB)
            if not piece:
                break
            got.append(piece)
        assert stream.ahead == START_AHEAD == 2
    assert b"".join(got) == data
    assert fault_server.max_active <= START_AHEAD

    # Twenty ranges, each answered after 0.05 s. Ranges asked for together arrive together, so not every
    # read finds its range still downloading; with ten ranges the fourth wait once never came (CI on a
    # clean clone: ahead 5), with twenty it came in every run seen.
    long = data * 2
    waiting = fault_server.url("/waiting-reader", Script(body=long, etag='"v1"', delay=0.05))
    with open_ranged(HttpSource(backoff=0.01), waiting, "data", connections=6, range_size=MIB) as stream:
        assert stream.read() == long
        assert stream.ahead == 6


def test_download_settings() -> None:
    from transforms.errors import ConfigurationError
    from transforms.settings import Settings

    default = Settings.from_env({"s3_bucket_name": "b"})
    assert (default.download_connections, default.download_range_bytes) == (8, 4 * MIB)
    chosen = Settings.from_env({"s3_bucket_name": "b", "download_connections": "1",
                                "download_range_mb": "16"})
    assert (chosen.download_connections, chosen.download_range_bytes) == (1, 16 * MIB)
    for bad in ({"download_connections": "0"}, {"download_connections": "33"}, {"download_range_mb": "0"},
                {"download_connections": "many"}):
        with pytest.raises(ConfigurationError):
            Settings.from_env({"s3_bucket_name": "b", **bad})
