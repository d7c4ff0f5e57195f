"""JSON Lines built by columnar code: the same JSON, value for value, as Python's json module spells it."""

from __future__ import annotations

import datetime as dt
import json
import math
from decimal import Decimal

import duckdb
import pyarrow as pa
from hypothesis import given, settings
from hypothesis import strategies as st

from transforms.formats.columnar import json_lines

TRICKY = ["plain", "", 'quote " inside', "back\\slash", "new\nline", "cr\rlf\r\n", "tab\t", "\b\f",
          "\x00\x01\x1f\x7f", "ünïcødé ✓ 😀", "\u2028\u2029", '\\"', "\\n", "o'neil, jr", None]


def reference(batch: pa.RecordBatch) -> list[str]:
    """The per-value spelling the columnar code replaced (kept here as the oracle)."""
    def spell(value, type_) -> str:
        if value is None:
            return "null"
        if pa.types.is_string(type_):
            return json.dumps(value, ensure_ascii=False)
        if pa.types.is_boolean(type_):
            return "true" if value else "false"
        if pa.types.is_integer(type_) or pa.types.is_decimal(type_):
            return str(value)
        if pa.types.is_floating(type_):
            return repr(value) if math.isfinite(value) else "null"
        if pa.types.is_timestamp(type_):
            return '"' + value.isoformat(sep=" ", timespec="milliseconds") + '"'
        return '"' + value.isoformat() + '"'

    keys = [json.dumps(name) + ":" for name in batch.schema.names]
    columns = [column.to_pylist() for column in batch.columns]
    fields = list(batch.schema)
    return ["{" + ",".join(k + spell(v, f.type) for k, v, f in zip(keys, row, fields, strict=True)) + "}"
            for row in zip(*columns, strict=True)]


def batch_of(columns: dict[str, pa.Array]) -> pa.RecordBatch:
    return pa.RecordBatch.from_arrays(list(columns.values()), names=list(columns))


def test_every_type_spelled_as_python_spells_it() -> None:
    n = len(TRICKY)
    batch = batch_of({
        "name \"quoted\"": pa.array(TRICKY, pa.string()),
        "n": pa.array([None if i % 5 == 0 else (-1) ** i * 2 ** (i * 4) for i in range(n)], pa.int64()),
        "small": pa.array([i - 7 if i % 4 else None for i in range(n)], pa.int8()),
        "x": pa.array([1.0, 0.1, 1e20, 1e-7, -0.0, math.nan, math.inf, -math.inf, 5e-324, 1e16, 2.5,
                       None, 123456789.125, -3.0, 1 / 3], pa.float64()),
        "f": pa.array([0.1, 1.5, None] * 5, pa.float32()),
        "ok": pa.array([True, False, None] * 5, pa.bool_()),
        "d": pa.array([Decimal("0"), Decimal("-1.50"), Decimal("12345678901.99"), None, Decimal("0.01")] * 3,
                      pa.decimal128(13, 2)),
        "day": pa.array([dt.date(2024, 2, 29), dt.date(5, 3, 1), None] * 5, pa.date32()),
        "at": pa.array([dt.datetime(2024, 1, 1, 12, 0, 0, 5000), dt.datetime(99, 12, 31, 23, 59, 59, 999000),
                        None] * 5, pa.timestamp("ms")),
    })
    lines = bytes(json_lines(batch)).decode("utf-8").split("\n")
    assert lines[-1] == "" and len(lines) == n + 1
    expected = reference(batch)
    for ours, theirs in zip(lines[:-1], expected, strict=True):
        mine, ref = json.loads(ours), json.loads(theirs)
        assert mine == ref or _same_floats(ours, theirs)
        assert {k: type(v) for k, v in mine.items()} == {k: type(v) for k, v in ref.items()}
    # Strings, booleans, integers, decimals, dates and timestamps: byte for byte.
    exact = batch.drop_columns(["x", "f"])
    assert bytes(json_lines(exact)).decode() == "".join(line + "\n" for line in reference(exact))


def _same_floats(ours: str, theirs: str) -> bool:
    """float32 values: Arrow writes the shortest text for the float32 (0.1), Python for its double
    (0.10000000149011612); both read back to the same float32."""
    a, b = json.loads(ours), json.loads(theirs)
    return a.keys() == b.keys() and all(
        a[k] == b[k] or (isinstance(a[k], float) and float(pa.scalar(a[k], pa.float32()).as_py()) == b[k])
        for k in a)


@settings(max_examples=200, deadline=None)
@given(st.lists(st.one_of(st.none(), st.text(st.characters(exclude_categories=("Cs",)))), min_size=1,
                max_size=20))
def test_any_text_is_escaped_exactly_as_json_dumps(values: list[str | None]) -> None:
    batch = batch_of({"s": pa.array(values, pa.string())})
    assert bytes(json_lines(batch)).decode("utf-8") == "".join(line + "\n" for line in reference(batch))


def test_a_sliced_batch_writes_only_its_rows() -> None:
    batch = batch_of({"s": pa.array(["a", "b", "c", "d"]), "i": pa.array([1, 2, 3, 4])}).slice(1, 2)
    assert bytes(json_lines(batch)) == b'{"s":"b","i":2}\n{"s":"c","i":3}\n'


def test_duckdb_reads_the_types_back(tmp_path) -> None:
    batch = batch_of({"s": pa.array(TRICKY, pa.string()), "i": pa.array(range(len(TRICKY)), pa.int64()),
                      "x": pa.array([i / 4 for i in range(len(TRICKY))], pa.float64())})
    path = tmp_path / "t.jsonl"
    path.write_bytes(bytes(json_lines(batch)))
    rows = duckdb.connect().execute(
        f"select s, i, x from read_json('{path}', format='newline_delimited', "
        "columns={s: 'VARCHAR', i: 'BIGINT', x: 'DOUBLE'})").fetchall()
    assert rows == [(s, i, i / 4) for i, s in enumerate(TRICKY)]


# The shortcuts (one search per column for escapes, one pass for integral floats, keys folded into the
# passes made anyway) on the cases each takes.
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
