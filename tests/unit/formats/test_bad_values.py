"""Bad values found by halving (typed_csv._salvage) across many batches: exactly the bad ones nulled and
counted under ``null``, and under ``fail`` the first in row order named with its row, column and value."""

from __future__ import annotations

import io
import json
import random

import pyarrow as pa
import pytest

from transforms.ci360.layout import parse_layout
from transforms.errors import BadValueError
from transforms.formats.typed_csv import TypedCsvReader
from transforms.schema.columns import build_schema
from transforms.sources.local import LocalStream

LAYOUT = json.dumps([{"columnName": "id", "dataType": "NUMERIC"}, {"columnName": "n", "dataType": "NUMERIC"},
                     {"columnName": "day", "dataType": "DATE"}, {"columnName": "ok", "dataType": "BOOLEAN"}])
ROWS = 60_000


def csv_with(bad: dict[int, tuple[int, str]]) -> bytes:
    """Rows 1..ROWS; ``bad`` maps a row number to (column index, the text written there instead)."""
    lines = []
    for row in range(1, ROWS + 1):
        fields = [str(row), f" {row * 3} " if row % 7 == 0 else str(row * 3), "2024-02-29", "true"]
        if row in bad:
            fields[bad[row][0]] = bad[row][1]
        lines.append(",".join(fields))
    return ("\n".join(lines) + "\n").encode()


def read(data: bytes, policy: str) -> tuple[pa.Table, TypedCsvReader]:
    schema = build_schema(parse_layout(LAYOUT.encode()), {"id": "bigint", "n": "bigint"})
    reader = TypedCsvReader(LocalStream(io.BytesIO(data), len(data)), schema, policy, block_size=64 * 1024)
    return pa.Table.from_batches(list(reader), reader.arrow_schema), reader


def scattered(seed: int) -> dict[int, tuple[int, str]]:
    rng = random.Random(seed)
    rows = rng.sample(range(1, ROWS + 1), 12) + [100, 101, 102]  # three in a row, in one batch
    words = ["x1", "1.5.", "2024-13-01", "maybe", "--", "١٢"]
    return {row: (rng.choice([1, 2, 3]), rng.choice(words)) for row in rows}


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_null_policy_nulls_exactly_the_bad_values(seed: int) -> None:
    bad = scattered(seed)
    table, reader = read(csv_with(bad), "null")
    assert table.num_rows == ROWS and reader.rows == ROWS
    names = ["id", "n", "day", "ok"]
    expected_counts: dict[str, int] = {}
    for _, (column, _) in bad.items():
        expected_counts[names[column]] = expected_counts.get(names[column], 0) + 1
    assert reader.bad_values == expected_counts
    for index, name in enumerate(names[1:], start=1):
        nulls = {i + 1 for i, v in enumerate(table.column(name).to_pylist()) if v is None}
        assert nulls == {row for row, (column, _) in bad.items() if column == index}
    assert table.column("n").to_pylist()[:7] == [3, 6, 9, 12, 15, 18, 21]  # padding trimmed, not bad
    assert table.column("id").to_pylist() == list(range(1, ROWS + 1))


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_fail_policy_names_the_first_bad_value(seed: int) -> None:
    bad = scattered(seed)
    first = min(bad)
    with pytest.raises(BadValueError) as caught:
        read(csv_with(bad), "fail")
    column, text = bad[first]
    expected = ["bigint", "bigint", "date", "boolean"][column]
    assert caught.value.details == [{"row": first, "column": ["id", "n", "day", "ok"][column],
                                     "value": text, "expected": expected}]


def test_a_column_that_is_all_bad_is_all_null() -> None:
    bad = {row: (2, "not a date") for row in range(1, ROWS + 1)}
    table, reader = read(csv_with(bad), "null")
    assert reader.bad_values == {"day": ROWS} and table.column("day").null_count == ROWS
