"""JSON Lines' shortcuts (one search per column for escapes, one pass for integral floats, keys folded into
the passes made anyway) give the same JSON as Python's json module, on the cases each shortcut takes."""

from __future__ import annotations

import json
import math

import pyarrow as pa
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.test_jsonl_columnar import batch_of, reference
from transforms.formats.columnar import json_lines


def lines_of(batch: pa.RecordBatch) -> list[str]:
    text = bytes(json_lines(batch)).decode("utf-8")
    assert text.endswith("\n")
    return text[:-1].split("\n")


def same_json(batch: pa.RecordBatch) -> None:
    for ours, theirs in zip(lines_of(batch), reference(batch), strict=True):
        mine, ref = json.loads(ours), json.loads(theirs)
        assert mine == ref
        assert {k: type(v) for k, v in mine.items()} == {k: type(v) for k, v in ref.items()}


def test_a_column_of_integral_floats_keeps_its_point_zero_and_its_nulls() -> None:
    batch = batch_of({"id": pa.array([10_000_000.0, None, -3.0, 0.0, 9_999_999_999_999_998.0], pa.float64()),
                      "ok": pa.array([True, None, False, True, None])})
    assert lines_of(batch) == ['{"id":10000000.0,"ok":true}', '{"id":null,"ok":null}',
                               '{"id":-3.0,"ok":false}', '{"id":0.0,"ok":true}',
                               '{"id":9999999999999998.0,"ok":null}']


def test_floats_neither_all_integral_nor_all_finite() -> None:
    batch = batch_of({"x": pa.array([1.0, 0.25, math.nan, None, math.inf, 1e16, -2.0], pa.float64())})
    assert lines_of(batch) == ['{"x":1.0}', '{"x":0.25}', '{"x":null}', '{"x":null}', '{"x":null}',
                               '{"x":1e+16}', '{"x":-2.0}']


@settings(max_examples=100, deadline=None)
@given(st.lists(st.one_of(st.none(), st.integers(-(2 ** 53), 2 ** 53).map(float),
                          st.floats(allow_nan=True, allow_infinity=True)), min_size=1, max_size=12))
def test_any_floats_read_back_as_python_wrote_them(values: list[float | None]) -> None:
    same_json(batch_of({"x": pa.array(values, pa.float64()), "n": pa.array(range(len(values)))}))


def test_a_slice_is_escaped_by_its_own_values_only() -> None:
    """The escape search looks at the slice's bytes: a quote before or after it changes nothing, and one
    inside it is escaped, whichever column it is in."""
    names = pa.array(['a "q"', "plain", "tab\there", 'z"'])
    batch = batch_of({"s": names, "t": pa.array(["x", "y\\", "\x01", None])})
    assert lines_of(batch.slice(1, 1)) == ['{"s":"plain","t":"y\\\\"}']
    assert lines_of(batch.slice(2, 2)) == ['{"s":"tab\\there","t":"\\u0001"}', '{"s":"z\\"","t":null}']
    assert bytes(json_lines(batch)).decode() == "".join(line + "\n" for line in reference(batch))


def test_empty_strings_and_all_null_columns() -> None:
    batch = batch_of({"s": pa.array(["", ""]), "t": pa.array([None, None], pa.string()),
                      "x": pa.array([None, None], pa.float64()), "d": pa.array([None, None], pa.date32())})
    assert lines_of(batch) == ['{"s":"","t":null,"x":null,"d":null}'] * 2
