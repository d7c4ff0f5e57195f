"""The sink's part buffers: reused while uploads keep up with the writer, handed back after a burst.

Requests are answered in this process (``captured``, conftest.py); a gate holds each part's upload until
the test lets it go, so each state below is one the sink reaches and keeps."""

from __future__ import annotations

import threading
import time
from typing import Any
from urllib.parse import parse_qs, urlsplit

from transforms.sinks.s3 import S3MultipartSink

MIB = 1 << 20
PART = 5 * MIB
WAIT_S = 30.0  # the most any step waits (a bound, never a pace)


class Gates:
    """Each part's upload waits at its own gate until released."""

    def __init__(self, s3: Any) -> None:
        self._open: dict[int, threading.Event] = {}
        self._lock = threading.Lock()
        self.arrived: set[int] = set()  # parts whose upload reached its gate
        s3.meta.events.register_first("before-send.s3", self._hold)

    def _gate(self, number: int) -> threading.Event:
        with self._lock:
            return self._open.setdefault(number, threading.Event())

    def _hold(self, request: Any, **_: Any) -> None:
        numbers = parse_qs(urlsplit(request.url).query).get("partNumber")
        if request.method == "PUT" and numbers:
            number = int(numbers[0])
            with self._lock:
                self.arrived.add(number)
            assert self._gate(number).wait(WAIT_S), "a part held past the test's bound"

    def release(self, number: int) -> None:
        self._gate(number).set()


def wait_for(condition: Any, what: str) -> None:
    deadline = time.monotonic() + WAIT_S
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.005)


def test_after_a_burst_of_parts_the_sink_keeps_no_buffer_per_part_that_was_in_flight(
        captured: tuple[Any, list[Any]]) -> None:
    """A typed format writes a row group at once: several parts go out together, then none for a while.
    A buffer whose upload ended is kept for the next part while fewer are kept than parts still
    uploading (SPARE_BUFFERS); the others go back to the system (mapped on their own: transforms.memory),
    so a burst does not leave its peak resident for the rest of the file."""
    s3, requests = captured
    gates = Gates(s3)
    sink = S3MultipartSink(s3, "b", "k", part_size=PART, max_in_flight=4)
    data = bytes(range(256)) * (4 * PART // 256)
    sink.write(data)  # four parts, all uploading at once, held
    wait_for(lambda: gates.arrived == {1, 2, 3, 4}, "four parts uploading")
    gates.release(1)  # three still uploading: its buffer is kept for the next part
    wait_for(lambda: sink._parts[0].done(), "part 1 uploaded")
    assert len(sink._spare) == 1
    sink.write(data[:PART])  # part 5 takes the spare buffer
    assert len(sink._spare) == 0
    for number, spares in ((2, 1), (3, 2), (4, 2), (5, 2)):  # 3, 2, 1, 0 still uploading after each
        gates.release(number)
        wait_for(lambda number=number: sink._parts[number - 1].done(), f"part {number} uploaded")
        assert len(sink._spare) == spares
    # Five buffers were in use, four uploading at once; once the uploads drained, two are kept.
    sink.close()
    parts = [r for r in requests if r.method == "PUT"]
    assert sorted(len(r.body) for r in parts) == [PART] * 5
