"""Ranges and names: what a plan lists, and where a fan-out's objects go."""

from __future__ import annotations

from transforms.fanout.naming import is_part_of, owner_tag, part_object, range_object, staging_prefix
from transforms.fanout.plan import MAX_RANGES, list_ranges
from transforms.formats.registry import format_for_key

GIB = 1024**3
TIB = 1024 * GIB


def test_ranges_tile_the_file_exactly() -> None:
    ranges, per = list_ranges(10 * GIB + 7, GIB)
    assert per == GIB and len(ranges) == 11
    assert ranges[0]["start"] == 0 and ranges[-1]["end"] == 10 * GIB + 7
    assert all(a["end"] == b["start"] for a, b in zip(ranges, ranges[1:], strict=False))
    assert [r["index"] for r in ranges] == list(range(11))


def test_a_5_tib_file_gets_larger_ranges_not_more_than_the_state_can_carry() -> None:
    ranges, per = list_ranges(5 * TIB, GIB)
    assert len(ranges) <= MAX_RANGES and per * len(ranges) >= 5 * TIB
    assert per <= 5 * GIB // 2 + 1 + 200 * 1024 * 1024  # ~2.6 GiB: about a minute of the slowest format
    import json
    assert len(json.dumps(ranges)) < 200 * 1024  # Step Functions: 256 KiB per state


def test_staging_is_a_hidden_folder_beside_the_key_named_by_the_job_alone() -> None:
    staging = staging_prefix("occ", "task", "bucket", "exports/ci360/audience/dt=1/audience.csv")
    assert staging.startswith("exports/ci360/audience/dt=1/_ci360-fanout-") and staging.endswith("/")
    assert staging == staging_prefix("occ", "task", "bucket", "exports/ci360/audience/dt=1/audience.csv")
    assert staging != staging_prefix("occ2", "task", "bucket", "exports/ci360/audience/dt=1/audience.csv")
    assert staging_prefix("o", "t", "b", "audience.csv").startswith("_ci360-fanout-")
    assert range_object(staging, 3).endswith("/range-00003.part")
    assert owner_tag(staging).startswith("_ci360-fanout-")


def test_columnar_objects_sit_beside_the_key_in_row_order() -> None:
    fmt = format_for_key("a/audience.parquet")
    names = [part_object("a/audience.parquet", fmt, index, 12) for index in range(12)]
    assert names[0] == "a/audience-00000-of-00012.parquet" and names == sorted(names)
    upper = format_for_key("a/Audience.PQ")
    assert part_object("a/Audience.PQ", upper, 1, 2) == "a/Audience-00001-of-00002.PQ"
    assert all(is_part_of(name, "a/audience.parquet", fmt) for name in names)
    for other in ("a/audience.parquet", "a/audience-1-of-2.parquet", "a/audience-00000-of-00012.orc",
                  "a/audiences-00000-of-00012.parquet", "a/audience-00000-xx-00012.parquet"):
        assert not is_part_of(other, "a/audience.parquet", fmt)
