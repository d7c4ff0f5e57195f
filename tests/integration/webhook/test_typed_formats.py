"""Typed outputs read back as Athena would: with pyarrow, and with DuckDB standing in for Athena."""

from __future__ import annotations

import datetime as dt
import gzip
import io
import json
import math
from decimal import Decimal

import duckdb
import pyarrow as pa
import pyarrow.orc as orc
import pyarrow.parquet as pq
import pytest

from devstack.localstack import webhook_payload
from tests.support.helpers import TYPED_COLUMN_TYPES as COLUMN_TYPES
from tests.support.helpers import TYPED_DATA as DATA
from tests.support.helpers import TYPED_LAYOUT as LAYOUT
from tests.support.helpers import Stack, api_gateway_event, invoke

EXPECTED = {
    "identity_id": ["id-1", "id-2", "id-3", "id-4"],
    "external_id": [100001, 100002, 100003, 9007199254740993],  # beyond a double's exact range
    "email": ["ana@example.com", "o'neil, jr@example.com", "zoë@example.com", ""],  # "" is not null
    "signup_date": [dt.date(2021, 3, 4), dt.date(2019, 12, 31), None, dt.date(2000, 2, 29)],
    "last_order_dttm": [dt.datetime(2024, 11, 2, 10, 15), dt.datetime(2024, 10, 30, 23, 59, 59, 123000),
                        dt.datetime(2024, 11, 20, 8, 0), None],
    "order_total": [Decimal("125.50"), Decimal("0.99"), None, Decimal("1234567890.12")],
    "score": [0.25, -1.5, None, 1000.0],
    "visits": [3, 0, None, 12],
    "opted_in": [True, False, None, True],
    "segment": ["north", 'say "hi"', None, "multi\nline"],
}
ARROW_TYPES = {
    "identity_id": pa.string(), "external_id": pa.int64(), "email": pa.string(), "signup_date": pa.date32(),
    "last_order_dttm": pa.timestamp("ms"), "order_total": pa.decimal128(12, 2), "score": pa.float64(),
    "visits": pa.int64(), "opted_in": pa.bool_(), "segment": pa.string(),
}


def land(stack: Stack, key: str, data: bytes = DATA, **params: str):
    data_url, metadata_url = stack.stage(data, LAYOUT)
    params.setdefault("column_types", COLUMN_TYPES)
    return invoke(api_gateway_event(webhook_payload(data_url, metadata_url, key, **params)))


def duck(blob: bytes, reader: str, suffix: str, tmp_path) -> list[tuple]:
    path = tmp_path / f"landed{suffix}"
    path.write_bytes(blob)  # the test's own copy for DuckDB; the connector itself never touches disk
    return duckdb.sql(f"SELECT * FROM {reader}('{path}')").fetchall()


def test_parquet_types_values_and_nulls_read_back(stack: Stack, tmp_path) -> None:
    response = land(stack, "typed/audience.parquet")
    assert response.status == 200, response.body
    body = response.body
    assert body["rows"] == 4 and body["format"] == "parquet"
    assert body["columnNames"]["External ID"] == "external_id"
    assert body["unknownTypes"] == {"segment": "GEOGRAPHY"}
    assert body["schema"]["order_total"] == "decimal(12,2)"
    blob = stack.landed("typed/audience.parquet")
    table = pq.read_table(io.BytesIO(blob))
    assert dict(zip(table.schema.names, table.schema.types, strict=True)) == ARROW_TYPES
    assert table.to_pydict() == EXPECTED
    # What Athena engine v3 needs at the Parquet level: INT64 MILLIS timestamps, DATE, DECIMAL, signed.
    parquet_schema = pq.ParquetFile(io.BytesIO(blob)).schema
    column = {parquet_schema.column(i).name: parquet_schema.column(i) for i in range(len(parquet_schema))}
    assert column["last_order_dttm"].physical_type == "INT64"
    assert "timeUnit=milliseconds" in str(column["last_order_dttm"].logical_type)
    assert str(column["signup_date"].logical_type) == "Date"
    assert "Decimal" in str(column["order_total"].logical_type)
    assert column["external_id"].physical_type == "INT64"  # plain INT64 is signed; never UINT_64
    assert "isSigned=false" not in str(column["external_id"].logical_type)
    rows = duck(blob, "read_parquet", ".parquet", tmp_path)
    assert rows[1] == ("id-2", 100002, "o'neil, jr@example.com", dt.date(2019, 12, 31),
                       dt.datetime(2024, 10, 30, 23, 59, 59, 123000), Decimal("0.99"), -1.5, 0, False,
                       'say "hi"')
    assert rows[2][3:] == (None, dt.datetime(2024, 11, 20, 8, 0), None, None, None, None, None)


@pytest.mark.parametrize("codec", ["snappy", "zstd", "gzip", "none"])
def test_parquet_codec_is_selectable(stack: Stack, codec: str) -> None:
    assert land(stack, f"c/{codec}.parquet", compression=codec).status == 200
    metadata = pq.ParquetFile(io.BytesIO(stack.landed(f"c/{codec}.parquet"))).metadata
    expected = "UNCOMPRESSED" if codec == "none" else codec.upper()
    assert metadata.row_group(0).column(0).compression == expected


def test_orc_reads_back_with_the_same_values(stack: Stack, tmp_path) -> None:
    response = land(stack, "typed/audience.orc")
    assert response.status == 200, response.body
    table = orc.ORCFile(io.BytesIO(stack.landed("typed/audience.orc"))).read()
    assert table.schema.field("order_total").type == pa.decimal128(12, 2)
    got = table.to_pydict()
    assert {k: v for k, v in got.items() if k != "last_order_dttm"} == {
        k: v for k, v in EXPECTED.items() if k != "last_order_dttm"}
    assert [None if v is None else v.replace(tzinfo=None) for v in got["last_order_dttm"]] == \
        EXPECTED["last_order_dttm"]


@pytest.mark.parametrize("key", ["typed/audience.jsonl", "typed/audience.jsonl.gz"])
def test_json_lines_typed_values_and_nulls(stack: Stack, key: str, tmp_path) -> None:
    response = land(stack, key)
    assert response.status == 200, response.body
    blob = stack.landed(key)
    text = (gzip.decompress(blob) if key.endswith(".gz") else blob).decode("utf-8")
    lines = [json.loads(line, parse_float=Decimal) for line in text.splitlines()]
    assert len(lines) == 4
    assert lines[0] == {"identity_id": "id-1", "external_id": 100001, "email": "ana@example.com",
                        "signup_date": "2021-03-04", "last_order_dttm": "2024-11-02 10:15:00.000",
                        "order_total": Decimal("125.50"), "score": Decimal("0.25"), "visits": 3,
                        "opted_in": True, "segment": "north"}
    assert lines[2]["signup_date"] is None and lines[2]["segment"] is None
    assert lines[3]["external_id"] == 9007199254740993 and lines[3]["email"] == ""
    rows = duck(blob, "read_json_auto", ".jsonl.gz" if key.endswith(".gz") else ".jsonl", tmp_path)
    assert len(rows) == 4


SIGNED_LAYOUT = json.dumps([{"columnName": "id", "dataType": "CHARACTER"},
                            {"columnName": "x", "dataType": "NUMERIC"}]).encode()
# As CI360 may stage them: -0.0 and -0 (negative zeros), and values whose text Arrow and Python lay out
# differently (1e-05, 1.5e-07, 12345678901.25), beside plain ones.
SIGNED_DATA = b"a,-0.0\nb,-0\nc,0\nd,-1.5\ne,0.00001\nf,-1.5e-7\ng,12345678901.25\nh,-7\n"
SIGNED_VALUES = [-0.0, -0.0, 0.0, -1.5, 1e-05, -1.5e-07, 12345678901.25, -7.0]


@pytest.mark.parametrize("key", ["signed/x.jsonl", "signed/x.jsonl.gz"])
def test_json_lines_keep_the_sign_of_negative_zero_and_python_s_spelling(stack: Stack, key: str,
                                                                         tmp_path) -> None:
    """numeric -0.0 and -0 land as -0.0 (as Parquet and ORC keep them), read back so by DuckDB and by
    Python's json; every value spelled as json.dumps spells it."""
    data_url, metadata_url = stack.stage(SIGNED_DATA, SIGNED_LAYOUT)
    response = invoke(api_gateway_event(webhook_payload(data_url, metadata_url, key)))
    assert response.status == 200, response.body
    assert response.body["schema"]["x"] == "double"
    blob = stack.landed(key)
    text = (gzip.decompress(blob) if key.endswith(".gz") else blob).decode("utf-8")
    assert text == "".join(f'{{"id":"{chr(97 + i)}","x":{json.dumps(v)}}}\n'
                           for i, v in enumerate(SIGNED_VALUES))
    by_json = [json.loads(line)["x"] for line in text.splitlines()]
    path = tmp_path / ("landed.jsonl.gz" if key.endswith(".gz") else "landed.jsonl")
    path.write_bytes(blob)  # the test's own copy for DuckDB
    by_duckdb = [x for (x,) in duckdb.sql(
        f"SELECT x FROM read_json('{path}', format='newline_delimited', "
        "columns={id: 'VARCHAR', x: 'DOUBLE'})").fetchall()]
    for read in (by_json, by_duckdb):
        assert read == SIGNED_VALUES
        assert [math.copysign(1.0, x) for x in read] == [math.copysign(1.0, v) for v in SIGNED_VALUES]


@pytest.mark.parametrize("key", ["e.parquet", "e.orc", "e.jsonl"])
def test_empty_audience_is_a_valid_zero_row_file_with_the_full_schema(stack: Stack, key: str) -> None:
    response = land(stack, key, data=b"")
    assert response.status == 200, response.body
    assert response.body["rows"] == 0
    blob = stack.landed(key)
    if key.endswith(".parquet"):
        table = pq.read_table(io.BytesIO(blob))
    elif key.endswith(".orc"):
        table = orc.ORCFile(io.BytesIO(blob)).read()
    else:
        assert blob == b""
        return
    assert table.num_rows == 0
    assert table.schema.names == list(ARROW_TYPES)


def test_bad_value_fails_with_a_422_naming_row_column_and_value(stack: Stack) -> None:
    bad = DATA + b'id-5,100005,x@example.com,2024-02-30,,1.00,1,1,true,x\n'
    response = land(stack, "bad.parquet", data=bad)
    assert response.status == 422, response.body
    error = response.body["error"]
    assert error["code"] == "BAD_VALUE"
    assert error["details"] == [
        {"row": 5, "column": "signup_date", "value": "2024-02-30", "expected": "date"}]
    assert stack.target_keys() == [] and stack.pending_uploads() == []


def test_bad_values_become_nulls_and_are_counted_when_asked(stack: Stack) -> None:
    bad = DATA + b'id-5,12x,x@example.com,2024-02-30,,1.005,abc,1,maybe,x\n'
    response = land(stack, "lenient.parquet", data=bad, on_bad_value="null")
    assert response.status == 200, response.body
    assert response.body["badValues"] == {"external_id": 1, "signup_date": 1, "order_total": 1, "score": 1,
                                          "opted_in": 1}
    row = pq.read_table(io.BytesIO(stack.landed("lenient.parquet"))).slice(4).to_pylist()[0]
    assert row["identity_id"] == "id-5" and row["external_id"] is None and row["opted_in"] is None
    assert row["visits"] == 1


def test_without_overrides_numeric_lands_as_double(stack: Stack) -> None:
    response = land(stack, "plain.parquet", column_types="")
    assert response.body["schema"]["external_id"] == "double"
    assert response.body["schema"]["order_total"] == "double"


def test_override_naming_no_column_is_a_422(stack: Stack) -> None:
    response = land(stack, "x.parquet", column_types=json.dumps({"nope": "bigint"}))
    assert response.status == 422 and "nope" in response.body["error"]["message"]


def test_malformed_override_is_a_400(stack: Stack) -> None:
    response = land(stack, "x.parquet", column_types=json.dumps({"visits": "hugeint"}))
    assert response.status == 400 and "hugeint" in response.body["error"]["message"]


def test_environment_overrides_apply_and_send_parameters_win(stack: Stack, monkeypatch) -> None:
    monkeypatch.setenv("column_types", json.dumps({"visits": "int", "score": "float"}))
    response = land(stack, "env.parquet", column_types=json.dumps({"score": "decimal(10,2)"}))
    assert response.body["schema"]["visits"] == "int"
    assert response.body["schema"]["score"] == "decimal(10,2)"


def test_large_parquet_gathers_batches_into_row_groups(stack: Stack, monkeypatch) -> None:
    """Several CSV blocks (8 MiB each) go into one row group, not one row group per block."""
    monkeypatch.setenv("row_group_mb", "64")
    row = b"id-%d,%d,p%d@example.com,2024-01-01,2024-01-01 00:00:00,1.00,0.5,1,true,s\n"
    data = b"".join(row % (i, i, i) for i in range(400_000))
    response = land(stack, "big.parquet", data=data)
    assert response.status == 200, response.body
    parquet = pq.ParquetFile(io.BytesIO(stack.landed("big.parquet")))
    assert parquet.metadata.num_rows == 400_000
    assert parquet.metadata.num_row_groups == 1
    assert stack.pending_uploads() == []
