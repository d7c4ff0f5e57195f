"""JSON Lines built by columnar code: the same JSON, value for value, as Python's json module spells it."""

from __future__ import annotations

import datetime as dt
import json
import math
from decimal import Decimal

import duckdb
import pyarrow as pa
from hypothesis import example, given, settings
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


# -- floats: exactly json.dumps's text, byte for byte (issue 20: -0.0 was written 0.0) ------------------

# Where the spelling changes: Python writes positional from 1e-4 up to (not including) 1e16 and an
# exponent of at least two digits outside it; Arrow's own text is positional only from 1e-6 below 1e10.
EDGES = [0.0, -0.0, 5e-324, -5e-324, 2.225073858507201e-308, 2.2250738585072014e-308, 1e-310, 1e-300,
         1e-10, 1.0000000000000001e-10, 9.999999999999999e-11, 1e-9, 1.5e-9, 1e-7, -4.5e-7, 1e-6, 1.5e-6,
         1e-5, -2.5e-5, 1.2345678901234567e-5, 9.999999999999999e-5, 1e-4, 0.00012345, 0.1, 0.5, 1.0, -1.0,
         123.456, 1e9, 1234567890.1234567, 9999999999.5, 1e10, 12345678901.25, 51255482385.67197,
         99999999999.9, 1234567890123.4, 1626983080611305.8, 4503599627370495.5, 1e15, 9007199254740993.0,
         9999999999999998.0, 1e16, -1e16, 1.2345678901234568e16, 1e17, 1e21, 1e22, 1.7976931348623157e308,
         -1.7976931348623157e308, 2.0 ** 63, -(2.0 ** 63), 2.0 ** 64]
NON_FINITE = [math.nan, math.inf, -math.inf]

floats = st.one_of(
    st.floats(allow_nan=True, allow_infinity=True),  # any double, NaN and the infinities included
    st.floats(min_value=-2.2250738585072014e-308, max_value=2.2250738585072014e-308),  # subnormals, zero
    st.builds(lambda digits, exponent: float(f"{digits}e{exponent}"),  # decimal text, every magnitude
              st.integers(-(10 ** 17), 10 ** 17), st.integers(-30, 30)),
    st.integers(-(2 ** 64), 2 ** 64).map(float),  # integral, below and beyond 1e16
    st.sampled_from(EDGES + NON_FINITE),
)


def float_texts(values: list[float | None]) -> list[str]:
    """The text the writer gives each value of a float64 column."""
    lines = lines_of(batch_of({"x": pa.array(values, pa.float64())}))
    assert all(line.startswith('{"x":') and line.endswith("}") for line in lines)
    return [line[len('{"x":'):-1] for line in lines]


def dumps(value: float | None) -> str:
    """json.dumps's text; NaN and the infinities, which JSON has no text for (json.dumps writes NaN and
    Infinity, which no JSON reader takes: DuckDB, Athena's SerDes), are null, as are nulls."""
    return "null" if value is None or not math.isfinite(value) else json.dumps(value)


@settings(max_examples=400, deadline=None)
@given(st.lists(st.one_of(st.none(), floats), min_size=1, max_size=40))
@example([math.nan])  # no value in any range: NaN is no magnitude (found by this test)
@example([math.inf, math.nan, None])
@example([0.0, 1e-05, 12345678901.25, 1.5e-07])  # every range at once, beside a zero
def test_every_float_is_written_exactly_as_json_dumps_writes_it(values: list[float | None]) -> None:
    assert float_texts(values) == [dumps(v) for v in values]


@settings(max_examples=100, deadline=None)
@given(st.lists(st.one_of(st.none(), st.integers(-(2 ** 53), 2 ** 53).map(float), st.just(-0.0)), min_size=1,
                max_size=40))
def test_a_column_of_integral_floats_is_written_exactly_as_json_dumps_writes_it(
        values: list[float | None]) -> None:
    """The one-pass shortcut for columns of integral values (ids read as NUMERIC), -0.0 included."""
    assert float_texts(values) == [dumps(v) for v in values]


def test_negative_zero_keeps_its_sign_alone_among_integers_and_among_fractions() -> None:
    assert float_texts([-0.0]) == ["-0.0"]
    assert float_texts([-0.0, 0.0, -3.0, None]) == ["-0.0", "0.0", "-3.0", "null"]
    assert float_texts([-0.0, 0.5, math.nan]) == ["-0.0", "0.5", "null"]
    assert float_texts([0.5, -0.0, -0.0]) == ["0.5", "-0.0", "-0.0"]


def test_every_edge_of_the_spelling_and_every_non_finite_value() -> None:
    values = [sign * v for v in EDGES for sign in (1, -1)] + NON_FINITE + [None]
    assert float_texts(values) == [dumps(v) for v in values]
    # And in a sliced batch (offsets into the buffers), and value by value.
    assert lines_of(batch_of({"x": pa.array(values, pa.float64())}).slice(3, 40)) == [
        '{"x":' + dumps(v) + "}" for v in values[3:43]]
    assert [float_texts([v])[0] for v in values] == [dumps(v) for v in values]


def test_duckdb_reads_negative_zero_back_with_its_sign(tmp_path) -> None:
    path = tmp_path / "z.jsonl"
    path.write_bytes(bytes(json_lines(batch_of({"x": pa.array([-0.0, 0.0, 1e-05, 12345678901.25])}))))
    rows = duckdb.connect().execute(
        f"select x from read_json('{path}', format='newline_delimited', columns={{x: 'DOUBLE'}})").fetchall()
    assert [math.copysign(1.0, x) for (x,) in rows] == [-1.0, 1.0, 1.0, 1.0]
    assert [x for (x,) in rows] == [-0.0, 0.0, 1e-05, 12345678901.25]


def test_every_control_character_quote_and_backslash_alone_in_its_column() -> None:
    """The escape search finds each character on its own (a control character by the bytes' minimum, a
    quote or backslash by a search), wherever it sits in the column's bytes."""
    for char in [chr(c) for c in range(0x20)] + ['"', "\\"]:
        for values in ([char], ["plain", f"x{char}"], [f"{char}y", None, "z"]):
            batch = batch_of({"s": pa.array(values, pa.string())})
            assert bytes(json_lines(batch)).decode() == "".join(line + "\n" for line in reference(batch))


def test_integral_values_among_fractions_keep_their_digits_and_point_zero() -> None:
    """Below 1e10 an integral float64 takes Arrow's digits and ".0"; from 1e10, and in a float32 (whose
    shortest text may round the digits), its int64's digits."""
    for values, type_ in (([5.0, 0.25, -0.0, 9_999_999_999.0, None, -3.0], pa.float64()),
                          ([1e10, 0.5, 123456789012345.0, -0.0], pa.float64()),
                          ([123456792.0, 0.5, -0.0, 16777217.0], pa.float32())):
        same_json(batch_of({"x": pa.array(values, type_)}))
    assert lines_of(batch_of({"x": pa.array([5.0, 0.25, -0.0, 9_999_999_999.0], pa.float64())})) == [
        '{"x":5.0}', '{"x":0.25}', '{"x":-0.0}', '{"x":9999999999.0}']


def test_each_type_with_and_without_nulls_in_any_column_order() -> None:
    """A column without nulls leaves its key, quotes and ".0" to the line's join; one with nulls is
    joined on its own and its nulls filled: both spell the same, first, middle or last in the line."""
    columns = {
        "s": pa.array(["a", 'q"', "z"], pa.string()),
        "i": pa.array([1, -2, 3], pa.int64()),
        "d": pa.array([Decimal("1.50"), Decimal("-0.01"), Decimal("0")], pa.decimal128(5, 2)),
        "ids": pa.array([1.0, -0.0, 12345678901234.0], pa.float64()),
        "x": pa.array([0.5, 2.0, 1e-7], pa.float64()),
        "day": pa.array([dt.date(2024, 2, 29), dt.date(1969, 12, 31), dt.date(1, 1, 1)], pa.date32()),
        "at": pa.array([dt.datetime(2024, 2, 29, 12, 0, 0, 5000), dt.datetime(1970, 1, 1),
                        dt.datetime(1969, 12, 31, 23, 59, 59, 999000)], pa.timestamp("ms")),
        "ok": pa.array([True, False, True], pa.bool_()),
    }
    for with_nulls in (False, True):
        arrays = {name: (pa.array(array.to_pylist()[:2] + [None], array.type) if with_nulls else array)
                  for name, array in columns.items()}
        for order in (list(arrays), list(reversed(arrays)), sorted(arrays)):
            batch = batch_of({name: arrays[name] for name in order})
            assert bytes(json_lines(batch)).decode() == "".join(line + "\n" for line in reference(batch))
