"""Copy batches: every part in exactly one batch, in order, each batch within its byte and part caps (a
single part larger than the byte cap gets a batch of its own)."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from transforms.fanout.assemble import MAX_COPY_PART, Piece, plan_parts
from transforms.fanout.batches import BATCH_PARTS, deal

MIB = 1024 * 1024
GIB = 1024 * MIB
Batches = list[list[tuple[int, int, int]]]


def unfold(batches: Batches) -> list[tuple[int, int]]:
    return [(target, number) for batch in batches for target, first, last in batch
            for number in range(first, last + 1)]


def check(targets: list[list[int]], max_bytes: int, max_parts: int = BATCH_PARTS) -> Batches:
    batches = deal(targets, max_bytes, max_parts)
    expected = [(target, number) for target, sizes in enumerate(targets)
                for number in range(1, len(sizes) + 1)]
    assert unfold(batches) == expected  # every part exactly once, in order
    for batch in batches:
        assert batch  # no empty batch
        sizes = [targets[t][n - 1] for t, first, last in batch for n in range(first, last + 1)]
        assert len(sizes) <= max_parts
        assert sum(sizes) <= max_bytes or len(sizes) == 1
        for t, first, last in batch:
            assert 1 <= first <= last <= len(targets[t])
    return batches


def test_ten_thousand_parts_of_one_object() -> None:
    """The most S3 allows: 10,000 parts of ~500 MiB (a ~4.9 TiB object) in 32 GiB batches."""
    sizes = [500 * MIB] * 10_000
    batches = check([sizes], 32 * 1024 * MIB)
    assert len(batches) == 10_000 // 65 + 1  # 65 parts of 500 MiB fit in 32 GiB
    assert all(len(batch) == 1 for batch in batches)  # one span each: the parts are consecutive


def test_the_part_cap_splits_batches_of_small_parts() -> None:
    batches = check([[5 * MIB] * 10_000], 10**15)
    assert [last - first + 1 for ((_, first, last),) in batches] == [BATCH_PARTS] * 10


def test_parquet_many_targets_share_batches_in_order() -> None:
    """One target per range (Parquet, ORC): several targets in one batch, each as its own span."""
    targets = [[300 * MIB] for _ in range(1024)]
    batches = check(targets, 4 * GIB)
    assert len(batches[0]) == 13 and batches[0][0] == (0, 1, 1) and batches[0][-1] == (12, 1, 1)


def test_a_part_larger_than_the_cap_is_a_batch_of_its_own() -> None:
    batches = check([[6 * MIB, MAX_COPY_PART, 6 * MIB]], MIB)
    assert batches == [[(0, 1, 1)], [(0, 2, 2)], [(0, 3, 3)]]


@given(st.lists(st.lists(st.integers(0, 6 * GIB), min_size=0, max_size=40), min_size=1, max_size=30),
       st.integers(1, 64 * GIB), st.integers(1, 50))
def test_batches_cover_every_part_once_within_the_caps(targets: list[list[int]], max_bytes: int,
                                                        max_parts: int) -> None:
    check(targets, max_bytes, max_parts)


def test_a_planned_object_deals_into_batches() -> None:
    """From range objects to parts to batches: 1,024 ranges of 2.7 GB of JSON Lines (1 TiB of source)."""
    pieces = [Piece(f"r{n}", 2_700_000_000, "AAAAAA==", f'"{n}"') for n in range(1024)]
    sizes = [sum(end - first for _, _, first, end in part) for part in plan_parts(pieces)]
    assert len(sizes) == 1024
    batches = check([sizes], 32768 * MIB)
    assert len(batches) == 86  # 12 parts of 2.7 GB in 32 GiB
