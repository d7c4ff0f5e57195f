"""Watching a transfer: a progress line at a steady interval, and the deadline it must finish by.

Both read the same numbers (bytes so far, rate, Content-Length), so they live together: the deadline
check is "will the rest, at the rate so far, finish before Lambda stops us?", asked on every read.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from transforms.errors import DeadlineError

Clock = Callable[[], float]


@dataclass(frozen=True)
class Snapshot:
    bytes_done: int
    total: int | None
    seconds: float

    @property
    def percent(self) -> float | None:
        return round(100.0 * self.bytes_done / self.total, 1) if self.total else None

    @property
    def mb_per_s(self) -> float:
        return round(self.bytes_done / 1e6 / self.seconds, 1) if self.seconds > 0 else 0.0

    @property
    def eta_seconds(self) -> float | None:
        if not self.total or not self.bytes_done or self.seconds <= 0:
            return None
        return round((self.total - self.bytes_done) * self.seconds / self.bytes_done, 1)

    def to_json(self) -> dict[str, Any]:
        return {"bytes_done": self.bytes_done, "total_bytes": self.total, "percent": self.percent,
                "mb_per_s": self.mb_per_s, "eta_seconds": self.eta_seconds}


class Deadline:
    """Time left before the platform kills the run, with a margin kept for a clean abort.

    ``remaining_ms`` is Lambda's ``context.get_remaining_time_in_millis``. The run stops when the time
    left is inside the margin, or when, after ``min_sample`` seconds of evidence, the projected finish
    falls beyond it: aborting early leaves the time to clean up and record why.
    """

    def __init__(self, remaining_ms: Callable[[], int], margin_s: float = 20.0, min_sample_s: float = 5.0):
        self._remaining_ms = remaining_ms
        self.margin_s = margin_s
        self.min_sample_s = min_sample_s

    def seconds_left(self) -> float:
        """Seconds until the run must stop (the margin already taken off); at most 0 when it must."""
        return self._remaining_ms() / 1000.0 - self.margin_s

    def wait_bound(self, timeout: float) -> float:
        """The longest one network wait may take: ``timeout``, or less when the deadline is nearer.

        Every socket wait (connect, headers, each read) is given this as its timeout, so a silent or
        trickling source is stopped on time rather than after the next whole piece arrives.
        """
        return max(0.0, min(timeout, self.seconds_left()))

    def expired(self) -> bool:
        return self.seconds_left() <= 0

    def stop(self, what: str, progress: dict[str, Any] | None = None) -> DeadlineError:
        """The error to raise when a wait ran into the deadline; ``what`` says what was being waited for."""
        return DeadlineError(f"stopped with {max(0.0, self.seconds_left()) + self.margin_s:.0f} s left "
                             f"before the function's time limit, while {what}", progress or {})

    def check(self, snapshot: Snapshot) -> None:
        left = self.seconds_left()
        if left <= 0:
            raise DeadlineError(f"stopped with {left + self.margin_s:.0f} s left before the function's "
                                f"time limit, after {snapshot.bytes_done} bytes", snapshot.to_json())
        eta = snapshot.eta_seconds
        if eta is not None and snapshot.seconds >= self.min_sample_s and eta > left:
            raise DeadlineError(f"stopped early: at {snapshot.mb_per_s} MB/s the remaining "
                                f"{snapshot.total - snapshot.bytes_done} bytes need about {eta:.0f} s, "  # type: ignore[operator]
                                f"more than the {left:.0f} s left", snapshot.to_json())

    def platform_ms_left(self) -> int:
        """Milliseconds before the platform stops the function, no margin taken off."""
        return self._remaining_ms()


DEADLINE_CHECK_S = 0.05  # how often reading checks the deadline and the projected finish,
DEADLINE_CHECK_BYTES = 1 << 20  # or after this many bytes, when they come faster than that


class Progress:
    """Called with each piece read; logs a line every ``interval`` seconds and enforces the deadline."""

    def __init__(self, total: int | None, report: Callable[[Snapshot], None], *, interval_s: float = 10.0,
                 deadline: Deadline | None = None, clock: Clock = time.monotonic) -> None:
        self.total = total
        self._report = report
        self._interval = interval_s
        self._deadline = deadline
        self._clock = clock
        self._started = clock()
        self._next_report = self._started + interval_s
        self._next_check = self._started
        self._next_bytes = 0
        self.bytes_done = 0

    def snapshot(self) -> Snapshot:
        return Snapshot(self.bytes_done, self.total, self._clock() - self._started)

    def __call__(self, n: int) -> None:
        self.bytes_done += n
        now = self._clock()
        if now >= self._next_report:
            self._next_report = now + self._interval
            self._report(self.snapshot())
        if self._deadline is not None and (now >= self._next_check or self.bytes_done >= self._next_bytes):
            # Every DEADLINE_CHECK_S or DEADLINE_CHECK_BYTES, whichever comes first, not on every piece
            # (a piece is up to 128 KiB: 8,000 or more a GB); the waits themselves are bounded by the
            # deadline apart from this (Deadline.wait_bound).
            self._next_check = now + DEADLINE_CHECK_S
            self._next_bytes = self.bytes_done + DEADLINE_CHECK_BYTES
            self._deadline.check(self.snapshot())
