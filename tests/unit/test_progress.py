from __future__ import annotations

import pytest

from transforms.errors import DeadlineError
from transforms.progress import Deadline, Progress, Snapshot


class FakeClock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_progress_lines_at_a_steady_interval_with_rate_and_eta() -> None:
    clock, lines = FakeClock(), []
    progress = Progress(1000, lines.append, interval_s=10, clock=clock)
    for _ in range(4):
        clock.now += 4
        progress(100)
    assert [line.bytes_done for line in lines] == [300]  # at 12 s: one line, not one per read
    line = lines[0]
    assert (line.percent, line.mb_per_s, line.eta_seconds) == (30.0, 0.0, 28.0)
    assert Snapshot(5_000_000, None, 2.0).to_json() == {
        "bytes_done": 5_000_000, "total_bytes": None, "percent": None, "mb_per_s": 2.5, "eta_seconds": None}


def test_deadline_stops_inside_the_margin_or_when_the_rest_cannot_finish() -> None:
    remaining = {"ms": 60_000}
    deadline = Deadline(lambda: remaining["ms"], margin_s=20, min_sample_s=5)
    deadline.check(Snapshot(500, 1000, 10.0))  # 10 s more needed, 40 s left: fine
    with pytest.raises(DeadlineError, match="need about 90 s"):
        deadline.check(Snapshot(100, 1000, 10.0))
    deadline.check(Snapshot(1, 1000, 1.0))  # too early to judge by rate
    remaining["ms"] = 19_000
    with pytest.raises(DeadlineError, match="19 s left"):
        deadline.check(Snapshot(999, 1000, 1.0))
