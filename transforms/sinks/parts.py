"""How large each multipart part is, so that any object S3 accepts fits in its 10,000 parts.

S3 numbers parts 1 to 10,000, each at most 5 GiB and (but the last) at least 5 MiB, for an object of at
most 5 TiB. Fixed 8 MiB parts stop at 78 GiB, after minutes of upload. The plan:

- **From the expected size, before the first part.** When the output's size can be expected (a
  passthrough writes the source's length plus a header; the ranged download knows that length before the
  first byte), the first part is large enough that the expected bytes need at most ``PLANNED_SHARE`` of
  the parts: the rest is room for an output that grows more than expected.
- **From the rate so far, as parts accumulate.** With a ``progress`` callable (the fraction of the input
  consumed so far), every new part re-estimates the whole output from the bytes written so far and grows
  the part size (never shrinks it) so that the estimated rest needs at most ``PLANNED_SHARE`` of the
  parts left. A typed format (JSON Lines can be several times its CSV) is caught early this way.
- **By a schedule, when nothing is known.** Without an expected size or progress (a source that gives no
  length), parts double every 800: from 5 MiB, 10,000 parts hold 13 TiB, the largest being 5 GiB.

Memory: the sink holds at most ``upload_concurrency + 1`` parts, so its bound is that times the largest
part planned. ``part_size_mb`` is the minimum and, for objects under ~70 GiB with the defaults, the only
size used. For a 1 TiB passthrough: 1 TiB / 9,000 parts = 117 MiB parts, so (10 + 1) x 117 MiB = 1.26 GiB
at the default upload_concurrency (585 MiB at 4).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

from transforms.errors import UnprocessableError

MIB = 1024 * 1024
MAX_PARTS = 10_000  # S3's part numbers run from 1 to 10,000
MAX_PART_SIZE = 5 * 1024 * MIB  # 5 GiB
MAX_OBJECT_SIZE = 5 * 1024 * 1024 * MIB  # 5 TiB
PLANNED_SHARE = 0.9  # the expected bytes may use this share of the parts left; the rest is headroom
SCHEDULE_STEP = 800  # without any estimate, parts double every this many (5 MiB: 13 TiB in all)
# A fraction of the input this small says little about the output's size (a typed format writes
# nothing until its first row group is full).
MIN_PROGRESS = 0.01


class ObjectTooLarge(UnprocessableError):
    """The object cannot be an S3 object: refused before the upload when that is known, else at the
    part that would be the 10,001st."""

    code = "OBJECT_TOO_LARGE"


@dataclass
class PartPlan:
    """The part size for each next part; ``minimum`` is ``part_size_mb``.

    ``expected_size``: the bytes the object is expected to hold, when known before the first part.
    ``progress``: the fraction (0 to 1) of the input consumed so far, or None while it is unknown.
    """

    minimum: int
    expected_size: int | None = None
    progress: Callable[[], float | None] | None = None

    def first(self) -> int:
        if self.expected_size is None:
            return self._bounded(self.minimum)
        return self._bounded(max(self.minimum, _spread(self.expected_size, MAX_PARTS)))

    def next(self, parts_done: int, written: int, current: int) -> int:
        """The size of part ``parts_done + 1``, given ``written`` bytes in the parts before it."""
        if parts_done >= MAX_PARTS:
            return current  # no next part can be numbered: the sink refuses one (outgrown)
        estimate = self._estimate(written)
        if estimate is None or written >= estimate:  # no idea, or more than expected: the schedule
            wanted = self.minimum * 2 ** (parts_done // SCHEDULE_STEP)
        else:
            wanted = _spread(max(0, estimate - written), MAX_PARTS - parts_done)
        return self._bounded(max(current, wanted))

    def _estimate(self, written: int) -> int | None:
        """The whole object's size, from the rate so far, else as expected; None: no idea."""
        fraction = self.progress() if self.progress is not None else None
        if fraction is not None and fraction >= MIN_PROGRESS and written:
            estimate = int(written / min(fraction, 1.0))
            return max(estimate, self.expected_size or 0)
        return self.expected_size

    def _bounded(self, size: int) -> int:
        """At least the minimum as given; a planned size in whole MiB, at most S3's 5 GiB."""
        return self.minimum if size <= self.minimum else min(MAX_PART_SIZE, _whole_mib(size))


def _spread(size: int, parts: int) -> int:
    """The part size that lets ``size`` bytes fill ``PLANNED_SHARE`` of ``parts`` parts."""
    return math.ceil(size / max(1, math.floor(parts * PLANNED_SHARE)))


def _whole_mib(size: int) -> int:
    return -(-size // MIB) * MIB


def outgrown(written: int) -> ObjectTooLarge:
    return ObjectTooLarge(f"the object outgrew S3's limit of {MAX_PARTS:,} parts after more than "
                          f"{written:,} bytes (an S3 object holds at most 5 TiB, in parts of at most 5 GiB): "
                          "nothing landed")


def refuse_too_large(size: int) -> None:
    """Refuse, before anything is uploaded, an object known to hold more than S3 accepts."""
    if size > MAX_OBJECT_SIZE:
        raise ObjectTooLarge(f"the object would hold {size:,} bytes: an S3 object holds at most 5 TiB "
                             f"({MAX_OBJECT_SIZE:,} bytes, {MAX_PARTS:,} parts of at most 5 GiB); "
                             "nothing was uploaded")
