"""The ranged download's read-ahead against the fault server (in this process, on 127.0.0.1), and its
settings. Downloads through moto's presigned URLs: tests/integration/sources/test_ranged_source.py."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import pytest

from tests.support.faultserver import Script
from transforms.sources.http import HttpSource
from transforms.sources.ranged import RangedStream, open_ranged

MIB = 1024 * 1024
WAIT_S = 30.0  # the most any step waits for the download (a bound, never a pace)


def test_ranges_fetched_ahead_are_bounded_by_connections(fault_server) -> None:
    """Memory: however slow the reader, no more than ``connections`` ranges are fetched ahead of it.

    Every range's body waits at a gate until the test lets it go, so each state below is one the
    download reaches and then keeps (nothing can finish behind the test's back), and what is counted is
    what the client did: its connections open (from the server's accept to the client's close) and the
    ranges it asked for and has not been given.
    """
    data = bytes(range(256)) * (40 * 1024)  # 10 MiB: ten ranges of 1 MiB
    url = fault_server.url("/bounded", Script(body=data, etag='"v1"', hold=True))
    with open_ranged(HttpSource(backoff=0.01), url, "data", connections=3, range_size=MIB) as stream, \
            ThreadPoolExecutor(1) as reader:
        assert isinstance(stream, RangedStream)
        first = reader.submit(stream.read, 10)
        # START_AHEAD ranges asked for; the reader finds range 0 still coming and is given a third.
        fault_server.wait_for(lambda: stream.ahead == 3 and fault_server.held_ranges() == [0, MIB],
                              "ranges 0 and 1 held, the reader waiting for range 0")
        fault_server.release(0)
        assert first.result(timeout=WAIT_S) == data[:10]
        # Range 0 read: three ranges ahead (1, 2, 3), on three connections, and no fourth until the
        # reader reads on.
        fault_server.wait_for(lambda: fault_server.held_ranges() == [MIB, 2 * MIB, 3 * MIB],
                              "ranges 1-3 held")
        assert len(fault_server.requests_for("/bounded")) == 4
        assert fault_server.active == 3
        rest = reader.submit(stream.read)
        for start in range(MIB, len(data), MIB):  # each range let go in turn, the next ones still held
            fault_server.wait_for(lambda start=start: start in fault_server.held_ranges(), f"range {start}")
            fault_server.release(start)
        assert data[:10] + rest.result(timeout=WAIT_S) == data
    assert len(fault_server.requests_for("/bounded")) == 10
    assert fault_server.max_held == 3  # ranges asked for and not yet given, at most, and at least
    assert fault_server.max_active == 3  # the client's connections open at once


def test_a_slow_reader_keeps_two_ranges_ahead_and_a_waiting_one_gets_every_connection(fault_server) -> None:
    """Memory follows the slower side: a reader that never waits for the network (a columnar
    conversion) holds START_AHEAD ranges ahead, not ``connections``; one the network keeps waiting
    (a passthrough) is given one more connection each time it waits, up to ``connections``."""
    from transforms.sources.ranged import START_AHEAD

    data = bytes(range(256)) * (40 * 1024)  # 10 MiB: ten ranges of 1 MiB
    slow = fault_server.url("/slow-reader", Script(body=data, etag='"v1"', hold=True))
    got = []
    with open_ranged(HttpSource(backoff=0.01), slow, "data", connections=6, range_size=MIB) as stream:
        while True:
            # The reader is slower than every range: each range it asked for is let go and has arrived
            # before it reads on (ranges are let go as they come; none is held for long).
            def arrived() -> bool:
                fault_server.release(*fault_server.held_ranges())
                return all(future.done() for future in stream._pending)

            fault_server.wait_for(arrived, "every range asked for arrived")
            piece = stream.read(MIB)
            if not piece:
                break
            got.append(piece)
        assert stream.ahead == START_AHEAD == 2
    assert b"".join(got) == data
    assert fault_server.max_held <= START_AHEAD
    assert fault_server.max_active <= START_AHEAD

    # A reader the network keeps waiting: each range is let go only once the reader waits for it, so
    # each of its waits is certain, and each gives it one more connection, up to six.
    long = data * 2
    waiting = fault_server.url("/waiting-reader", Script(body=long, etag='"v1"', hold=True))
    with open_ranged(HttpSource(backoff=0.01), waiting, "data", connections=6, range_size=MIB) as stream, \
            ThreadPoolExecutor(1) as reader:
        whole = reader.submit(stream.read)
        for start, ahead in zip(range(0, 4 * MIB, MIB), (3, 4, 5, 6), strict=True):
            fault_server.wait_for(lambda start=start, ahead=ahead: stream.ahead == ahead
                                  and start in fault_server.held_ranges(),
                                  f"the reader waiting for range {start} with {ahead} ahead")
            fault_server.release(start)
        fault_server.wait_for(lambda: fault_server.held_ranges() == [s * MIB for s in range(4, 10)],
                              "ranges 4-9 held: six ahead")
        fault_server.release_all()
        assert whole.result(timeout=WAIT_S) == long
        assert stream.ahead == 6
    assert fault_server.max_held == 6 and fault_server.max_active == 6



def test_past_the_first_ranges_one_late_range_adds_none_and_two_in_a_row_add_one(fault_server) -> None:
    """A reader slower than the network (a typed conversion) finds a range late now and then (its
    server or its own fetcher starved of CPU): that alone no longer holds one more range in memory for
    the rest of the file. Once the first ``connections`` ranges are read, the read-ahead grows only when
    the reader waits for two ranges in a row, as a reader the network keeps waiting does."""
    from transforms.sources.ranged import SHORT_IN_A_ROW, START_AHEAD

    assert SHORT_IN_A_ROW == 2
    data = bytes(range(256)) * (64 * 1024)  # 16 MiB: sixteen ranges of 1 MiB
    url = fault_server.url("/late", Script(body=data, etag='"v1"', hold=True))
    got = []
    with open_ranged(HttpSource(backoff=0.01), url, "data", connections=4, range_size=MIB) as stream, \
            ThreadPoolExecutor(1) as reader:
        for _ in range(4):  # the first ``connections`` ranges, each there before it is read
            def arrived() -> bool:
                fault_server.release(*fault_server.held_ranges())
                return all(future.done() for future in stream._pending)

            fault_server.wait_for(arrived, "every range asked for arrived")
            got.append(stream.read(MIB))
        fault_server.wait_for(lambda: stream._pending[0].done(), "range 4 arrived (let go above)")
        got.append(stream.read(MIB))  # range 4, there: ranges 5 and 6 are held
        assert stream.ahead == START_AHEAD

        def read_late(start: int) -> int:
            """Read range ``start`` arriving only once the reader waits for it; the ranges ahead then."""
            late = reader.submit(stream.read, MIB)

            def waiting() -> bool:
                return stream._taken == start // MIB + 1 and start in fault_server.held_ranges()

            fault_server.wait_for(waiting, f"the reader waiting for range {start // MIB}")
            ahead = stream.ahead
            fault_server.release(start)
            got.append(late.result(timeout=WAIT_S))
            return ahead

        assert read_late(5 * MIB) == START_AHEAD  # one late range: no more ahead
        assert read_late(6 * MIB) == START_AHEAD + 1  # a second in a row: one more
        fault_server.release_all()
        got.append(reader.submit(stream.read).result(timeout=WAIT_S))
    assert b"".join(got) == data

def test_download_settings() -> None:
    from transforms.errors import ConfigurationError
    from transforms.settings import Settings

    default = Settings.from_env({"s3_bucket_name": "b"})
    assert (default.download_connections, default.download_range_bytes) == (12, 4 * MIB)
    chosen = Settings.from_env({"s3_bucket_name": "b", "download_connections": "1",
                                "download_range_mb": "16"})
    assert (chosen.download_connections, chosen.download_range_bytes) == (1, 16 * MIB)
    for bad in ({"download_connections": "0"}, {"download_connections": "33"}, {"download_range_mb": "0"},
                {"download_connections": "many"}):
        with pytest.raises(ConfigurationError):
            Settings.from_env({"s3_bucket_name": "b", **bad})
