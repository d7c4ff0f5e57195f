"""The assembly's parts dealt into copy batches: one batch is one CopyParts worker (one function).

A batch takes parts in order (target by target, part by part) until the next part would pass its byte cap
or its part cap; a batch always holds at least one part (a part is at most 5 GiB, so a cap below that
still makes progress). Every part is in exactly one batch, in order, so a retried batch copies the same
part numbers again (S3 replaces a part) and no part is ever copied by two workers at once.
"""

from __future__ import annotations

from collections.abc import Sequence

# At most this many parts in one batch: a "read" part (small range objects carried into 5 MiB) passes
# through the function, so 1,000 bound that to ~5 GB (~50 s at 100 MB/s); a copy part is one request.
BATCH_PARTS = 1000

Span = tuple[int, int, int]  # (target, first part number, last part number), part numbers from 1


def deal(targets: Sequence[Sequence[int]], max_bytes: int, max_parts: int = BATCH_PARTS) -> list[list[Span]]:
    """``targets``: each target's part sizes, in part order. The batches, each a list of spans."""
    batches: list[list[Span]] = []
    batch: list[Span] = []
    held_bytes = held_parts = 0
    for target, sizes in enumerate(targets):
        for number, size in enumerate(sizes, start=1):
            if held_parts and (held_bytes + size > max_bytes or held_parts + 1 > max_parts):
                batches.append(batch)
                batch, held_bytes, held_parts = [], 0, 0
            if batch and batch[-1][0] == target and batch[-1][2] == number - 1:
                batch[-1] = (target, batch[-1][1], number)
            else:
                batch.append((target, number, number))
            held_bytes += size
            held_parts += 1
    if batch:
        batches.append(batch)
    return batches
