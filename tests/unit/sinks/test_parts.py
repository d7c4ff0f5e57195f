"""Part sizes: any object S3 accepts fits in its 10,000 parts, without a 5 TiB transfer.

Each test plays a whole upload through ``PartPlan`` (the sizes the sink would use, part after part) and
checks what S3 would check: at most 10,000 parts, each at most 5 GiB and at least the minimum.
"""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from transforms.formats.registry import format_for_key
from transforms.jobs.pipeline import part_plan
from transforms.sinks.parts import MAX_OBJECT_SIZE, MAX_PART_SIZE, MAX_PARTS, ObjectTooLarge, PartPlan

MIB = 1024 * 1024
GIB = 1024 * MIB
TIB = 1024 * GIB


def upload(plan: PartPlan, total: int, source_fraction=None) -> list[int]:
    """The part sizes of an upload of ``total`` bytes; ``source_fraction(written)`` plays the input's
    progress as the sink's plan reads it."""
    written, sizes, size = 0, [], plan.first()
    while written < total:
        part = min(size, total - written)
        sizes.append(part)
        written += part
        if written < total:
            if source_fraction is not None:
                plan.progress = lambda w=written: source_fraction(w)
            size = plan.next(len(sizes), written, size)
    return sizes


def check_s3_accepts(sizes: list[int], minimum: int) -> None:
    assert len(sizes) <= MAX_PARTS
    assert max(sizes) <= MAX_PART_SIZE
    assert all(size >= minimum for size in sizes[:-1])


def test_small_objects_keep_the_minimum_part_size() -> None:
    sizes = upload(PartPlan(8 * MIB, expected_size=1 * GIB), 1 * GIB)
    assert set(sizes) == {8 * MIB}


def test_a_source_declaring_5_tib_plans_parts_that_fit() -> None:
    plan = PartPlan(8 * MIB, expected_size=MAX_OBJECT_SIZE)
    assert plan.first() * MAX_PARTS >= MAX_OBJECT_SIZE
    sizes = upload(plan, MAX_OBJECT_SIZE, source_fraction=lambda written: written / MAX_OBJECT_SIZE)
    check_s3_accepts(sizes, 8 * MIB)
    assert sum(sizes) == MAX_OBJECT_SIZE


def test_the_pipeline_plans_from_the_length_the_ranged_download_declares() -> None:
    """What the pipeline gives the sink for a 5 TiB source, before a byte is read."""
    layout = SimpleNamespace(header_line=lambda: b"identity_id\n")
    ctx = SimpleNamespace(layout=layout, options=SimpleNamespace(csv_header=False))
    source = SimpleNamespace(content_length=MAX_OBJECT_SIZE, bytes_read=0)
    plan = part_plan(8 * MIB, format_for_key("a.csv"), ctx, source)
    assert plan.first() * int(MAX_PARTS * 0.9) >= MAX_OBJECT_SIZE
    assert plan.first() <= MAX_PART_SIZE


def test_a_csv_target_larger_than_s3_accepts_is_refused_before_the_upload() -> None:
    layout = SimpleNamespace(header_line=lambda: b"identity_id\n")
    ctx = SimpleNamespace(layout=layout, options=SimpleNamespace(csv_header=True))
    source = SimpleNamespace(content_length=MAX_OBJECT_SIZE, bytes_read=0)  # + the header: one too many
    with pytest.raises(ObjectTooLarge) as refused:
        part_plan(8 * MIB, format_for_key("a.csv"), ctx, source)
    assert refused.value.response_status == 422
    assert "5 TiB" in refused.value.message


def test_a_typed_output_larger_than_its_source_grows_its_parts_in_time() -> None:
    """JSON Lines can be several times its CSV: planned for the source's length, the parts grow as the
    rate shows, and 3 TiB of output from 1 TiB of CSV still fits."""
    source, output = 1 * TIB, 3 * TIB
    plan = PartPlan(8 * MIB, expected_size=source)
    sizes = upload(plan, output, source_fraction=lambda written: written / output)
    check_s3_accepts(sizes, 8 * MIB)


@pytest.mark.parametrize("minimum", [5 * MIB, 8 * MIB, 64 * MIB])
def test_with_no_length_and_no_progress_the_schedule_reaches_5_tib(minimum: int) -> None:
    sizes = upload(PartPlan(minimum), MAX_OBJECT_SIZE)
    check_s3_accepts(sizes, minimum)


def test_memory_for_a_1_tib_passthrough_is_what_the_readme_says() -> None:
    """parts.py and the README: 1 TiB in parts of 117 MiB; (upload_concurrency + 1) of them in memory."""
    plan = PartPlan(8 * MIB, expected_size=1 * TIB)
    sizes = upload(plan, 1 * TIB, source_fraction=lambda written: written / TIB)
    assert max(sizes) == 117 * MIB
    check_s3_accepts(sizes, 8 * MIB)


def test_past_10000_parts_no_part_is_planned_larger() -> None:
    assert PartPlan(8 * MIB).next(MAX_PARTS, 80 * GIB, 8 * MIB) == 8 * MIB
