"""Progress for a person watching the command line: a bar on a terminal, plain lines elsewhere.

``ProgressBar`` is a ``report`` for ``transforms.progress.Progress``: the pipeline hands it a
``Snapshot`` every interval. On a terminal it redraws one line in place (``\\r``); in a log file or a
CI job it prints a line each time, so the output stays readable there. Rows are counted by the
format as it writes and become known at the end, where ``finish`` reports them.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TextIO

from transforms.progress import Snapshot

BAR_WIDTH = 24
ETA_AFTER_BYTES = 256 * 1024  # before that, the rate is mostly start-up time and the ETA nonsense


def human_bytes(n: float) -> str:
    for unit in ("B", "kB", "MB", "GB"):
        if abs(n) < 1000 or unit == "GB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1000
    raise AssertionError("unreachable")


def human_seconds(seconds: float) -> str:
    total = int(round(seconds))
    hours, rest = divmod(total, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"


def _eta(snapshot: Snapshot) -> float | None:
    return snapshot.eta_seconds if snapshot.bytes_done >= ETA_AFTER_BYTES else None


def is_terminal(stream: TextIO) -> bool:
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError):  # no isatty, or a closed stream
        return False


class ProgressBar:
    """Draws ``Snapshot``s on ``stream``: ``tty`` picks the bar (default: ``stream.isatty()``)."""

    def __init__(self, stream: TextIO, label: str = "", *, tty: bool | None = None,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.stream = stream
        self.label = label
        self.tty = is_terminal(stream) if tty is None else tty
        self._clock = clock
        self._started = clock()
        self._drawn = 0  # width of the line on screen (tty), to blank what a shorter line leaves

    def __call__(self, snapshot: Snapshot) -> None:
        if self.tty:
            self._draw(self._bar(snapshot))
        else:
            self.stream.write(self._line(snapshot) + "\n")
            self.stream.flush()

    def _amounts(self, snapshot: Snapshot) -> str:
        done = human_bytes(snapshot.bytes_done)
        return f"{done} of {human_bytes(snapshot.total)}" if snapshot.total else done

    def _bar(self, snapshot: Snapshot) -> str:
        prefix = f"{self.label} " if self.label else ""
        if snapshot.percent is not None:
            filled = min(BAR_WIDTH, int(BAR_WIDTH * snapshot.percent / 100))
            bar = f"[{'#' * filled}{'.' * (BAR_WIDTH - filled)}] {snapshot.percent:5.1f}%"
        else:
            bar = f"[{'?' * BAR_WIDTH}]"
        eta = _eta(snapshot)
        tail = f"  ETA {human_seconds(eta)}" if eta is not None else ""
        return f"{prefix}{bar}  {self._amounts(snapshot)}  {snapshot.mb_per_s:.1f} MB/s{tail}"

    def _line(self, snapshot: Snapshot) -> str:
        parts = [f"{snapshot.percent:.1f}%"] if snapshot.percent is not None else []
        parts += [self._amounts(snapshot), f"{snapshot.mb_per_s:.1f} MB/s"]
        eta = _eta(snapshot)
        if eta is not None:
            parts.append(f"ETA {human_seconds(eta)}")
        prefix = f"{self.label}: " if self.label else "progress: "
        return prefix + ", ".join(parts)

    def _draw(self, text: str) -> None:
        pad = " " * max(0, self._drawn - len(text))
        self.stream.write("\r" + text + pad)
        self.stream.flush()
        self._drawn = len(text)

    def finish(self, rows: int | None, bytes_read: int, bytes_written: int | None = None) -> None:
        """The closing line: the bar at 100% (on a terminal) and what was done, rows included."""
        seconds = max(self._clock() - self._started, 0.0)
        rate = bytes_read / 1e6 / seconds if seconds > 0 else 0.0
        summary = f"{human_bytes(bytes_read)} read"
        if rows is not None:
            summary = f"{rows:,} rows, " + summary
        if bytes_written is not None:
            summary += f", {human_bytes(bytes_written)} written"
        summary += f" in {human_seconds(seconds)} ({rate:.1f} MB/s)"
        if self.tty:
            head = " ".join(part for part in (self.label, f"[{'#' * BAR_WIDTH}] 100.0%") if part)
            self._draw(f"{head}  done: {summary}")
            self.stream.write("\n")
        else:
            self.stream.write(f"{self.label or 'progress'}: done: {summary}\n")
        self.stream.flush()
        self._drawn = 0

    def abandon(self) -> None:
        """After a failure: end the bar's line so the error message starts on a line of its own."""
        if self.tty and self._drawn:
            self.stream.write("\n")
            self.stream.flush()
            self._drawn = 0
