"""A response left before its end closes its connection, so the next request to the host gets a fresh
one (issue 20 §2), on every path that leaves one: the deadline, a consumer that stops (a parse error),
a bad gzip body, the metadata's size limit, a page instead of the file, a 412 on a resume or a range,
and the ranged reader stopping its ranges in flight.

The fault server (this process, 127.0.0.1) keeps connections alive as S3 does and answers a
connection's requests in order, so a reused half-read connection hangs here as it would on S3: the next
request waits behind the rest of the old body, until the read timeout. Each test leaves a response
whose source has gone quiet (nothing more to read, so urllib3's own check of a pooled connection sees
nothing wrong with it), then checks that the server saw the client close that connection, and that a
request to the same host:port answers well within the read timeout.
"""

from __future__ import annotations

import gzip
import random
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from tests.support.faultserver import Script
from transforms.errors import DeadlineError, SourceError, UnprocessableError
from transforms.progress import Deadline
from transforms.sources.http import HttpSource
from transforms.sources.ranged import open_ranged

READ_TIMEOUT_S = 30.0  # what a reused, half-read connection would hang for
PROMPT_S = 5.0  # a fresh connection answers within this (a bound on a wait, not a benchmark)
QUIET_S = 60.0  # the source's pause after its first bytes: longer than the test
MIB = 1024 * 1024


@pytest.fixture
def source() -> HttpSource:
    return HttpSource(read_timeout=READ_TIMEOUT_S, backoff=0.01)


class Clock:
    """A deadline the test runs out at the moment it chooses."""

    def __init__(self) -> None:
        self.left_ms = 600_000
        self.deadline = Deadline(lambda: self.left_ms, margin_s=0.0)

    def expire(self) -> None:
        self.left_ms = 0


def read_first(stream: Any, size: int) -> bytes:
    """Read until ``size`` bytes came (the source's first burst, before it goes quiet)."""
    pieces, chunks = b"", stream.chunks(64 * 1024)
    while len(pieces) < size:
        pieces += next(chunks)
    return pieces


def assert_client_left(fault_server: Any, path: str, status: int | None = None) -> None:
    """The server saw the client close every connection it left mid-answer (of ``status``, if given)."""
    def every_one_closed() -> bool:
        left = [a for a in fault_server.answers_for(path) if not a.complete and status in (None, a.status)]
        return bool(left) and all(a.client_left for a in left)

    fault_server.wait_for(every_one_closed, f"the client closed its connection(s) to {path}",
                          timeout=PROMPT_S)


def assert_next_request_is_prompt(fault_server: Any, source: HttpSource) -> None:
    """The next request to the same host:port (in a warm Lambda, the next job's metadata) is answered
    at once, on a fresh connection."""
    url = fault_server.url("/next", Script(body=b"identity_id,email\n"))
    started = time.monotonic()
    assert source.fetch(url, "metadata", 1024) == b"identity_id,email\n"
    assert time.monotonic() - started < PROMPT_S


# --- the single stream (and the metadata fetch) ---------------------------------------------------

def stopped_by_the_deadline(source: HttpSource, url: str) -> None:
    clock = Clock()
    with pytest.raises(DeadlineError), source.open(url, "data", clock.deadline) as stream:
        assert read_first(stream, 1000) == b"x" * 1000
        clock.expire()
        stream.read(1000)


def stopped_by_its_reader(source: HttpSource, url: str) -> None:
    """The consumer fails mid-stream (a bad value, a parse error) and stops reading."""
    with pytest.raises(ValueError, match="row 12"), source.open(url, "data") as stream:
        read_first(stream, 1000)
        raise ValueError("row 12 is not a number")


@pytest.mark.parametrize("stop", [stopped_by_the_deadline, stopped_by_its_reader], ids=["deadline", "reader"])
def test_a_download_left_mid_body_closes_its_connection(fault_server, source: HttpSource,
                                                        stop: Callable[[HttpSource, str], None]) -> None:
    url = fault_server.url("/trickle", Script(body=b"x" * 100_000, trickle=(1000, QUIET_S)))
    stop(source, url)
    assert_client_left(fault_server, "/trickle")
    assert_next_request_is_prompt(fault_server, source)


def test_a_corrupt_gzip_body_closes_its_connection(fault_server, source: HttpSource) -> None:
    body = gzip.compress(b"x" * 10)[:10] + b"\xff" * 99_990  # a gzip header, then no deflate stream
    url = fault_server.url("/bad.gz", Script(body=body, headers={"Content-Encoding": "gzip"},
                                             trickle=(1000, QUIET_S)))
    with pytest.raises(SourceError, match="corrupt"), source.open(url, "data") as stream:
        stream.read(1000)
    assert_client_left(fault_server, "/bad.gz")
    assert_next_request_is_prompt(fault_server, source)


def _incompressible(size: int) -> bytes:
    return random.Random(20).randbytes(size)


@pytest.mark.parametrize("script", [
    # Content-Length says it is too large: refused before a byte of the body is read (which is held back)
    Script(body=b"[" * 100_000, hold=True),
    # gzip-encoded, so its size is known only while decoding: refused mid-stream, the rest still to come
    Script(body=gzip.compress(_incompressible(100_000)), headers={"Content-Encoding": "gzip"},
           trickle=(8192, QUIET_S)),
], ids=["declared", "streamed"])
def test_a_metadata_file_over_its_limit_closes_its_connection(fault_server, source: HttpSource,
                                                              script: Script) -> None:
    url = fault_server.url("/huge-layout", script)
    with pytest.raises(UnprocessableError, match="larger than its limit"):
        source.fetch(url, "metadata", 4096)
    assert_client_left(fault_server, "/huge-layout")
    assert_next_request_is_prompt(fault_server, source)


def test_a_web_page_instead_of_the_file_closes_its_connection(fault_server, source: HttpSource) -> None:
    url = fault_server.url("/portal", Script(body=b"<html>" + b" " * 100_000, trickle=(1000, QUIET_S),
                                             headers={"Content-Type": "text/html"}))
    with pytest.raises(SourceError, match="web page"), source.open(url, "data"):
        pass
    assert_client_left(fault_server, "/portal")
    assert_next_request_is_prompt(fault_server, source)


def test_a_resume_refused_with_412_closes_its_connection(fault_server, source: HttpSource) -> None:
    """The connection drops after 1000 bytes; the resume finds the object replaced (412), and S3's
    refusal comes slowly: only its first bytes are read for the message."""
    url = fault_server.url("/replaced", Script(body=b"x" * 100_000, etag='"v1"', etag_after_first='"v2"',
                                               cuts=[1000], refusal_trickle=(8, QUIET_S)))
    with pytest.raises(SourceError, match="changed while being read"), source.open(url, "data") as stream:
        stream.read()
    assert [a.status for a in fault_server.answers_for("/replaced")] == [200, 412]
    assert_client_left(fault_server, "/replaced", status=412)
    assert_next_request_is_prompt(fault_server, source)


# --- the ranged download ------------------------------------------------------------------------

def test_a_range_refused_with_412_closes_its_connection(fault_server, source: HttpSource) -> None:
    data = b"x" * (3 * MIB)
    url = fault_server.url("/changed", Script(body=data, etag='"v1"', etag_after_first='"v2"',
                                              refusal_trickle=(8, QUIET_S)))
    with pytest.raises(SourceError, match="changed while being read"), \
            open_ranged(source, url, "data", connections=3, range_size=MIB) as stream:
        stream.read()
    assert 412 in [a.status for a in fault_server.answers_for("/changed")]
    assert_client_left(fault_server, "/changed", status=412)
    assert_next_request_is_prompt(fault_server, source)


@pytest.fixture
def quiet_ranges(fault_server) -> Iterator[str]:
    """Four ranges, each sending its first 1000 bytes and then going quiet."""
    yield fault_server.url("/quiet-ranges", Script(body=b"x" * (4 * MIB), etag='"v1"',
                                                   trickle=(1000, QUIET_S)))


@pytest.mark.parametrize("how", ["deadline", "reader"])
def test_a_ranged_download_that_stops_closes_every_range_in_flight(fault_server, source: HttpSource,
                                                                    quiet_ranges: str, how: str) -> None:
    """The reader stops (its deadline, or its consumer failed) while its ranges wait on a quiet source:
    every range's connection is closed at once, not when its read times out."""
    clock = Clock()
    with pytest.raises(DeadlineError if how == "deadline" else ValueError), \
            open_ranged(source, quiet_ranges, "data", connections=3, range_size=MIB,
                        deadline=clock.deadline) as stream:
        fault_server.wait_for(lambda: len(fault_server.answers_for("/quiet-ranges")) == 2,
                              "two ranges in flight (START_AHEAD)")
        if how == "reader":
            raise ValueError("row 12 is not a number")
        clock.expire()
        stream.read(1000)  # waits for range 0: the deadline stops it
    assert_client_left(fault_server, "/quiet-ranges")
    fault_server.wait_for(lambda: fault_server.active == 0, "no connection left open", timeout=PROMPT_S)
    assert_next_request_is_prompt(fault_server, source)
