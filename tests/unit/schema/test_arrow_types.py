"""How CI360's text becomes typed values: timestamps cut to milliseconds, CI360's type names."""

from __future__ import annotations

import datetime as dt
import json

import pyarrow as pa
import pytest

from transforms.ci360.layout import parse_layout
from transforms.schema.arrow import converter
from transforms.schema.columns import build_schema


def timestamps(*texts: str | None) -> list[dt.datetime | None]:
    return converter("timestamp")(pa.array(list(texts), pa.string())).to_pylist()


@pytest.mark.parametrize(("text", "expected"), [
    # Cutting is flooring, before 1970 too: never rounded toward zero into the next second.
    ("1969-12-31 23:59:59.9995", dt.datetime(1969, 12, 31, 23, 59, 59, 999000)),
    ("1969-12-31 23:59:59.0009", dt.datetime(1969, 12, 31, 23, 59, 59)),
    ("1900-06-30 12:00:00.123999", dt.datetime(1900, 6, 30, 12, 0, 0, 123000)),
    ("2024-03-05 12:34:56.9999", dt.datetime(2024, 3, 5, 12, 34, 56, 999000)),
    # Any number of digits: nanoseconds, and more.
    ("2024-03-05 12:34:56.123456789", dt.datetime(2024, 3, 5, 12, 34, 56, 123000)),
    ("2024-03-05T12:34:56.123456789012", dt.datetime(2024, 3, 5, 12, 34, 56, 123000)),
    # Far outside the nanosecond range (1677-2262) that a finer parse would need.
    ("0001-01-01 00:00:00.0001", dt.datetime(1, 1, 1)),
    ("9999-12-31 23:59:59.9999999", dt.datetime(9999, 12, 31, 23, 59, 59, 999000)),
    ("2024-03-05 12:34:56.1", dt.datetime(2024, 3, 5, 12, 34, 56, 100000)),
])
def test_timestamps_are_cut_to_milliseconds_by_flooring(text: str, expected: dt.datetime) -> None:
    assert timestamps(text) == [expected]
    assert timestamps(f"  {text} ") == [expected]  # padded, as SAS exports can be


def test_a_batch_mixing_precisions_and_nulls() -> None:
    assert timestamps("2024-01-01 00:00:00", None, "1969-12-31 23:59:59.9999", "2024-01-01T00:00:00.5") == [
        dt.datetime(2024, 1, 1), None, dt.datetime(1969, 12, 31, 23, 59, 59, 999000),
        dt.datetime(2024, 1, 1, 0, 0, 0, 500000)]


@pytest.mark.parametrize("text", ["2024-03-05 12:34:56.123abc", "2024-02-30 00:00:00", "yesterday",
                                  "2024-03-05 12:34:56.1234+02:00"])
def test_what_is_not_a_timestamp_is_still_refused(text: str) -> None:
    with pytest.raises(pa.ArrowInvalid):
        timestamps(text)


@pytest.mark.parametrize("spelling", ["numerical", "NUMERICAL", " Numerical "])
def test_ci360s_numerical_maps_as_numeric(spelling: str) -> None:
    layout = parse_layout(json.dumps([{"columnName": "score", "dataType": spelling},
                                      {"columnName": "total", "dataType": "numeric"}]).encode())
    schema = build_schema(layout)
    assert schema.types() == {"score": "double", "total": "double"}
    assert schema.unknown_types == {}
    assert build_schema(layout, {"score": "decimal(12,2)"}).types()["score"] == "decimal(12,2)"
