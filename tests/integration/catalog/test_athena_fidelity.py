"""Athena returns exactly what CI360 sent, in every format, through the tables we define.

One audience holds what breaks readers: backslashes (``C:\\temp``, ``\\N``, a trailing one, ``\\"``,
a quoted field ending in one), empty and quoted-empty fields, empty numbers, padded numbers,
integers at the ends of bigint, dates at 0001-01-01 and 9999-12-31, timestamps before 1970 with
fractions, nine fractional digits and ``T`` separators, and ``Y``/``N`` flags. It lands through the
webhook (real S3 and Glue on 127.0.0.1), and what landed is read back by independent readers:

- Parquet: DuckDB and pyarrow; JSON Lines: DuckDB and pyarrow's JSON reader;
- ORC: pyarrow (ORC's C++ reader) and the stored seconds and nanoseconds decoded as Trino's Java
  reader decodes them (``tests/support/orc_streams.py``), since Athena's reader is that one;
- CSV: the table as Athena reads it, through an emulation of OpenCSVSerDe as Trino implements it
  (``tests/support/opencsv.py``) with the SerDe parameters Glue holds and the DDL prints, then the typed
  view's SQL run by DuckDB over those rows.

Every assertion is on values, against expectations written out by hand below.
"""

from __future__ import annotations

import base64
import datetime as dt
import gzip
import io
import json
import re
import subprocess
import sys
from decimal import Decimal
from pathlib import Path
from typing import Any

import boto3
import duckdb
import pyarrow as pa
import pyarrow.json as pajson
import pyarrow.orc as orc
import pyarrow.parquet as pq
import pytest

from devstack.localstack import webhook_payload
from tests.support import opencsv
from tests.support.helpers import Stack, api_gateway_event, invoke
from tests.support.orc_streams import stored_timestamps

LAYOUT = json.dumps([
    {"columnName": "identity_id", "dataType": "character"},
    {"columnName": "note", "dataType": "character"},
    {"columnName": "amount", "dataType": "numerical"},  # CI360's own spelling: a double, not text
    {"columnName": "visits", "dataType": "integer"},
    {"columnName": "big", "dataType": "numerical"},
    {"columnName": "price", "dataType": "numerical"},
    {"columnName": "born", "dataType": "date"},
    {"columnName": "seen", "dataType": "datetime"},
    {"columnName": "vip", "dataType": "boolean"},
]).encode()
COLUMN_TYPES = json.dumps({"big": "bigint", "price": "decimal(12,2)"})
NAMES = ["identity_id", "note", "amount", "visits", "big", "price", "born", "seen", "vip"]
TYPES = {"identity_id": "string", "note": "string", "amount": "double", "visits": "bigint", "big": "bigint",
         "price": "decimal(12,2)", "born": "date", "seen": "timestamp", "vip": "boolean"}

# CI360's bytes: RFC 4180, quotes doubled, a backslash is an ordinary character.
DATA = "".join(line + "\n" for line in [
    r'id-1,C:\temp\new,12.5,3,9223372036854775807,19.99,0001-01-01,1969-12-31 23:59:59.9995,Y',
    r'id-2,"say \""hi\""",,,-9223372036854775808,,9999-12-31,2024-03-05 12:34:56.123456789,N',
    r'id-3,\N,-0.25,0,9223372036854775806,-0.01,,2024-03-05T01:02:03,true',
    r'id-4,,1e3,42,,1234567890.12,1969-12-31,,',
    r'id-5,"","","7",1,0.5,2000-02-29,1900-01-01 00:00:00.5,0',
    r'id-6,"C:\dir\",0,-1,-9223372036854775807,0,1970-01-01,1969-12-31 23:59:59,FALSE',
    r'id-7,x\,3.5,  12,2,  7.25,2024-02-29, 2024-01-01 00:00:00 ,yes',
    r'id-8,"a, b",-1.5,5,3,100,2024-12-31,2024-12-31 23:59:59.999,F',
]).encode()

D, T = dt.date, dt.datetime
EXPECTED = [  # what every typed format must return
    {"identity_id": "id-1", "note": "C:\\temp\\new", "amount": 12.5, "visits": 3, "big": 2**63 - 1,
     "price": Decimal("19.99"), "born": D(1, 1, 1), "seen": T(1969, 12, 31, 23, 59, 59, 999000), "vip": True},
    {"identity_id": "id-2", "note": 'say \\"hi\\"', "amount": None, "visits": None, "big": -2**63,
     "price": None, "born": D(9999, 12, 31), "seen": T(2024, 3, 5, 12, 34, 56, 123000), "vip": False},
    {"identity_id": "id-3", "note": "\\N", "amount": -0.25, "visits": 0, "big": 2**63 - 2,
     "price": Decimal("-0.01"), "born": None, "seen": T(2024, 3, 5, 1, 2, 3), "vip": True},
    {"identity_id": "id-4", "note": None, "amount": 1000.0, "visits": 42, "big": None,
     "price": Decimal("1234567890.12"), "born": D(1969, 12, 31), "seen": None, "vip": None},
    {"identity_id": "id-5", "note": "", "amount": None, "visits": 7, "big": 1,
     "price": Decimal("0.50"), "born": D(2000, 2, 29), "seen": T(1900, 1, 1, 0, 0, 0, 500000), "vip": False},
    {"identity_id": "id-6", "note": "C:\\dir\\", "amount": 0.0, "visits": -1, "big": -2**63 + 1,
     "price": Decimal("0.00"), "born": D(1970, 1, 1), "seen": T(1969, 12, 31, 23, 59, 59), "vip": False},
    {"identity_id": "id-7", "note": "x\\", "amount": 3.5, "visits": 12, "big": 2,
     "price": Decimal("7.25"), "born": D(2024, 2, 29), "seen": T(2024, 1, 1), "vip": True},
    {"identity_id": "id-8", "note": "a, b", "amount": -1.5, "visits": 5, "big": 3,
     "price": Decimal("100.00"), "born": D(2024, 12, 31), "seen": T(2024, 12, 31, 23, 59, 59, 999000),
     "vip": False},
]
# The CSV table returns CI360's text field by field, with the quoting undone; both kinds of empty
# field read as '' (OpenCSV cannot tell them apart).
EXPECTED_TABLE_TEXT = [
    ["id-1", "C:\\temp\\new", "12.5", "3", "9223372036854775807", "19.99", "0001-01-01",
     "1969-12-31 23:59:59.9995", "Y"],
    ["id-2", 'say \\"hi\\"', "", "", "-9223372036854775808", "", "9999-12-31",
     "2024-03-05 12:34:56.123456789", "N"],
    ["id-3", "\\N", "-0.25", "0", "9223372036854775806", "-0.01", "", "2024-03-05T01:02:03", "true"],
    ["id-4", "", "1e3", "42", "", "1234567890.12", "1969-12-31", "", ""],
    ["id-5", "", "", "7", "1", "0.5", "2000-02-29", "1900-01-01 00:00:00.5", "0"],
    ["id-6", "C:\\dir\\", "0", "-1", "-9223372036854775807", "0", "1970-01-01", "1969-12-31 23:59:59",
     "FALSE"],
    ["id-7", "x\\", "3.5", "  12", "2", "  7.25", "2024-02-29", " 2024-01-01 00:00:00 ", "yes"],
    ["id-8", "a, b", "-1.5", "5", "3", "100", "2024-12-31", "2024-12-31 23:59:59.999", "F"],
]
# The typed view reads the same values as the typed formats, except that it cannot see quoting:
# the "" of id-5's note (the empty string in Parquet) is NULL there, like every empty field.
EXPECTED_VIEW = [{**row, "note": None} if row["identity_id"] == "id-5" else row for row in EXPECTED]
# ORC cannot carry a time before 1970 with a fraction of a second to Athena (see test_orc_*):
# with on_bad_value=null those become NULL and are counted.
ORC_UNREADABLE = {"id-1", "id-5"}


def land(stack: Stack, key: str, data: bytes = DATA, **params: str):
    data_url, metadata_url = stack.stage(data, LAYOUT)
    params.setdefault("column_types", COLUMN_TYPES)
    return invoke(api_gateway_event(webhook_payload(data_url, metadata_url, key, **params)))


def rows_of(table: pa.Table) -> list[dict[str, Any]]:
    return table.to_pylist()


def duck_rows(sql: str) -> list[dict[str, Any]]:
    relation = duckdb.sql(sql)
    return [dict(zip(relation.columns, row, strict=True)) for row in relation.fetchall()]


def local_copy(tmp_path: Path, blob: bytes, name: str) -> str:
    path = tmp_path / name
    path.write_bytes(blob)  # the test's own copy for DuckDB; the connector never touches disk
    return str(path)


# -- typed formats ---------------------------------------------------------------------------------

def test_parquet_reads_back_exactly_in_duckdb_and_pyarrow(stack: Stack, tmp_path: Path) -> None:
    response = land(stack, "fidelity/audience.parquet")
    assert response.status == 200, response.body
    assert response.body["schema"] == TYPES
    blob = stack.landed("fidelity/audience.parquet")
    assert rows_of(pq.read_table(io.BytesIO(blob))) == EXPECTED
    assert duck_rows(f"SELECT * FROM read_parquet('{local_copy(tmp_path, blob, 'a.parquet')}')") == EXPECTED


@pytest.mark.parametrize("key", ["fidelity/audience.jsonl", "fidelity/audience.jsonl.gz"])
def test_json_lines_read_back_exactly_in_duckdb_and_pyarrow(stack: Stack, tmp_path: Path, key: str) -> None:
    response = land(stack, key)
    assert response.status == 200, response.body
    blob = stack.landed(key)
    text = gzip.decompress(blob) if key.endswith(".gz") else blob
    columns = {"identity_id": "VARCHAR", "note": "VARCHAR", "amount": "DOUBLE", "visits": "BIGINT",
               "big": "BIGINT", "price": "DECIMAL(12,2)", "born": "DATE", "seen": "TIMESTAMP",
               "vip": "BOOLEAN"}
    path = local_copy(tmp_path, text, "a.jsonl")
    assert duck_rows(f"SELECT * FROM read_json('{path}', format='newline_delimited', "
                     f"columns={columns})") == EXPECTED
    schema = pa.schema([("identity_id", pa.string()), ("note", pa.string()), ("amount", pa.float64()),
                        ("visits", pa.int64()), ("big", pa.int64()), ("price", pa.decimal128(12, 2)),
                        ("born", pa.string()), ("seen", pa.timestamp("ms")), ("vip", pa.bool_())])
    options = pajson.ParseOptions(explicit_schema=schema)
    read = rows_of(pajson.read_json(io.BytesIO(text), parse_options=options))
    for row in read:  # pyarrow's JSON reader has no date parser: the text is checked through Python's
        row["born"] = None if row["born"] is None else D.fromisoformat(row["born"])
    assert read == EXPECTED


def test_orc_reads_back_in_pyarrow_and_as_trinos_reader_decodes_it(stack: Stack) -> None:
    response = land(stack, "fidelity/audience.orc", on_bad_value="null", compression="none")
    assert response.status == 200, response.body
    assert response.body["badValues"] == {"seen": 2}
    expected = [{**row, "seen": None} if row["identity_id"] in ORC_UNREADABLE else row for row in EXPECTED]
    blob = stack.landed("fidelity/audience.orc")
    assert rows_of(orc.read_table(io.BytesIO(blob))) == expected
    stored = stored_timestamps(blob, "seen")
    assert all(s is None or 0 <= s.nanos <= 999_999_999 for s in stored)  # the Java readers' rule
    epoch = T(1970, 1, 1)
    as_trino_reads = [None if s is None else epoch + dt.timedelta(milliseconds=s.trino_millis())
                      for s in stored]
    assert as_trino_reads == [row["seen"] for row in expected]


def test_orc_refuses_what_java_readers_would_reject_and_lands_nothing(stack: Stack) -> None:
    response = land(stack, "fidelity/refused.orc")
    assert response.status == 422, response.body
    error = response.body["error"]
    assert error["code"] == "BAD_VALUE"
    assert error["details"][0]["row"] == 1 and error["details"][0]["column"] == "seen"
    assert error["details"][0]["value"] == "1969-12-31 23:59:59.999"
    assert ".parquet" in error["message"]
    assert stack.target_keys() == [] and stack.pending_uploads() == []


def test_orc_stores_every_other_timestamp_as_java_readers_read_it(stack: Stack) -> None:
    """Whole seconds before 1970, fractions after it, the ends of the range: stored nanos in range."""
    seen = ["1969-12-31 23:59:59", "1900-01-01 00:00:00", "0001-01-01 00:00:00", "1970-01-01 00:00:00.001",
            "2024-03-05 12:34:56.123456789", "9999-12-31 23:59:59.999", "1969-12-31 23:59:58", ""]
    data = "".join(f"id-{i},,,,,,,{value},\n" for i, value in enumerate(seen)).encode()
    response = land(stack, "fidelity/range.orc", data=data, compression="gzip")  # ORC's ZLIB
    assert response.status == 200, response.body
    stored = stored_timestamps(stack.landed("fidelity/range.orc"), "seen")
    assert all(0 <= s.nanos <= 999_999_999 for s in stored if s is not None)
    epoch = T(1970, 1, 1)
    assert [None if s is None else epoch + dt.timedelta(milliseconds=s.trino_millis()) for s in stored] == [
        T(1969, 12, 31, 23, 59, 59), T(1900, 1, 1), T(1, 1, 1), T(1970, 1, 1, 0, 0, 0, 1000),
        T(2024, 3, 5, 12, 34, 56, 123000), T(9999, 12, 31, 23, 59, 59, 999000), T(1969, 12, 31, 23, 59, 58),
        None]


# -- CSV: the table as Athena reads it, and its typed view ------------------------------------------

def serde_and_table(glue_database: str, table: str) -> tuple[dict[str, str], dict[str, str], list[str]]:
    found = boto3.client("glue").get_table(DatabaseName=glue_database, Name=table)["Table"]
    descriptor = found["StorageDescriptor"]
    return (descriptor["SerdeInfo"]["Parameters"], found["Parameters"],
            [c["Name"] for c in descriptor["Columns"]] + [k["Name"] for k in found["PartitionKeys"]])


def view_sql_from_glue(glue_database: str, view: str) -> str:
    """The SQL Athena runs for the registered view, checked the way Trino checks a stored view."""
    found = boto3.client("glue").get_table(DatabaseName=glue_database, Name=view)["Table"]
    assert found["TableType"] == "VIRTUAL_VIEW"
    assert found["Parameters"]["presto_view"] == "true"
    assert found["Parameters"]["comment"].lower() == "presto view"
    text = found["ViewOriginalText"]
    assert text.startswith("/* Presto View: ") and text.endswith(" */")
    definition = json.loads(base64.b64decode(text[len("/* Presto View: "):-len(" */")], validate=True))
    assert definition["catalog"] == "awsdatacatalog" and definition["schema"] == glue_database
    trino = {"string": "varchar", "double": "double", "bigint": "bigint", "decimal(12,2)": "decimal(12,2)",
             "date": "date", "timestamp": "timestamp", "boolean": "boolean"}
    assert [(c["name"], c["type"]) for c in definition["columns"]][:len(NAMES)] == [
        (name, trino[TYPES[name]]) for name in NAMES]
    hive = {c["Name"]: c["Type"] for c in found["StorageDescriptor"]["Columns"]}
    assert {name: hive[name] for name in NAMES} == TYPES
    return definition["originalSql"]


def run_view(sql: str, table_rows: list[list[str | None]], columns: list[str],
             qualified_table: tuple[str, ...]) -> list[dict[str, Any]]:
    """The view's SQL over the table's rows, in DuckDB.

    Trino-specific, and mapped here: ``regexp_like`` (DuckDB: ``regexp_matches``, the same partial
    match over RE2). Both engines: TRY_CAST, NULLIF, trim, lower, substr, replace, CASE. Trino
    differs where the view does not depend on it: its CAST to timestamp needs a space before the
    time and rounds extra digits (hence the view's replace and substr), and its trim also removes
    tabs and other whitespace (DuckDB's, spaces only).
    """
    con = duckdb.connect()
    name = ".".join(f'"{part}"' for part in qualified_table)
    if len(qualified_table) == 2:
        con.execute(f'CREATE SCHEMA "{qualified_table[0]}"')
    con.execute(f"CREATE TABLE {name} ({', '.join(f'{chr(34)}{c}{chr(34)} VARCHAR' for c in columns)})")
    for row in table_rows:
        con.execute(f"INSERT INTO {name} VALUES ({', '.join('?' for _ in columns)})", row)
    relation = con.sql(sql.replace("regexp_like(", "regexp_matches("))
    return [dict(zip(relation.columns, row, strict=True)) for row in relation.fetchall()]


@pytest.mark.parametrize("key", ["fidelity/audience/dt=2026-11-30/part.csv",
                                 "fidelity/audience/dt=2026-11-30/part.csv.gz"])
def test_csv_table_and_its_typed_view_return_what_ci360_sent(stack: Stack, glue_database: str,
                                                              key: str) -> None:
    response = land(stack, key)
    assert response.status == 200, response.body
    assert response.body["recordsWithLineBreaks"] == 0
    glue = response.body["glue"]
    assert glue["table"] == "audience" and glue["view"] == "audience_typed" and glue["warning"] is None
    blob = stack.landed(key)
    text = gzip.decompress(blob) if key.endswith(".gz") else blob
    assert text == (",".join(NAMES) + "\n").encode() + DATA  # the object is CI360's bytes, with a header

    serde, parameters, columns = serde_and_table(glue_database, "audience")
    assert columns == [*NAMES, "dt"]
    table_rows = opencsv.read_table(text, len(NAMES), serde, parameters)
    assert table_rows == EXPECTED_TABLE_TEXT  # before the view: the text exactly, backslashes and all

    sql = view_sql_from_glue(glue_database, "audience_typed")
    with_partition = [[*row, "2026-11-30"] for row in table_rows]
    view = run_view(sql, with_partition, columns, (glue_database, "audience"))
    assert view == [{**row, "dt": "2026-11-30"} for row in EXPECTED_VIEW]


def unescape_hive_literal(literal: str) -> str:
    """A Hive DDL string literal's value (BaseSemanticAnalyzer.unescapeSQLString, the parts we use)."""
    body = literal[1:-1]
    return re.sub(r"\\(.)", lambda m: {"0": "\0", "n": "\n", "t": "\t"}.get(m.group(1), m.group(1)), body)


def test_the_printed_ddl_reads_the_same_as_the_registered_table(tmp_path: Path) -> None:
    """`python -m transforms ddl` declares the same SerDe and view as Glue gets: prove it on the data."""
    metadata = tmp_path / "metadata.json"
    metadata.write_bytes(LAYOUT)
    ddl = subprocess.run(
        [sys.executable, "-m", "transforms", "ddl", str(metadata), "--location", "s3://b/ci360/aud/",
         "--column-types", COLUMN_TYPES], capture_output=True, text=True, check=True).stdout
    declared = ddl.split("WITH SERDEPROPERTIES (\n", 1)[1].split("\n)", 1)[0]
    literal = r"'(?:[^'\\]|\\.)*'"
    properties = {unescape_hive_literal(k): unescape_hive_literal(v)
                  for k, v in re.findall(rf"^  ({literal}) = ({literal})", declared, flags=re.M)}
    assert properties == {"separatorChar": ",", "quoteChar": '"', "escapeChar": "\0"}
    assert "'skip.header.line.count' = '1'" in ddl
    text = (",".join(NAMES) + "\n").encode() + DATA
    table_rows = opencsv.read_table(text, len(NAMES), properties, {"skip.header.line.count": "1"})
    assert table_rows == EXPECTED_TABLE_TEXT
    view_sql = ddl.split('CREATE OR REPLACE VIEW "aud_typed" AS\n', 1)[1].rstrip().removesuffix(";")
    assert run_view(view_sql, table_rows, NAMES, ("aud",)) == EXPECTED_VIEW


def test_without_an_escape_character_opencsv_would_mangle_backslashes() -> None:
    """Why escapeChar is set: OpenCSVSerDe's default (a backslash) reads CI360's data wrong."""
    text = (",".join(NAMES) + "\n").encode() + DATA
    default = opencsv.read_table(text, len(NAMES), {"separatorChar": ",", "quoteChar": '"'},
                                 {"skip.header.line.count": "1"})
    assert default[0][1] == "C:tempnew" and default[2][1] == "N" and default[6][1] == "x"
    assert default[5] == ["id-6"] + [None] * 8  # \" kept the field open: the rest of the row is lost
    # Hive's quirk, which Trino keeps: an escapeChar of '"' means the backslash again.
    assert opencsv.serde_characters({"escapeChar": '"'}) == (",", '"', "\\")
    assert opencsv.serde_characters({"escapeChar": "\0"}) == (",", '"', "\0")


def test_quoted_line_breaks_are_counted_warned_and_really_split_the_csv_table(
        stack: Stack, glue_database: str, lambda_logs: io.StringIO) -> None:
    data = DATA + b'id-9,"two\nlines",1,1,1,1,2024-01-01,2024-01-01 00:00:00,Y\nid-10,"cr\r\nlf",2,2,2,2,,,\n'
    response = land(stack, "fidelity/breaks/part.csv", data=data)
    assert response.status == 200, response.body
    assert response.body["rows"] == 10
    assert response.body["recordsWithLineBreaks"] == 2
    assert "2 records hold a line break" in response.body["glue"]["warning"]
    assert ".parquet" in response.body["glue"]["warning"]
    logged = [json.loads(line) for line in lambda_logs.getvalue().splitlines()]
    assert [(e["level"], e["records_with_line_breaks"]) for e in logged if "line breaks" in e["message"]] == [
        ("WARNING", 2)]
    # The warning is true: Athena's CSV table splits those records into broken rows.
    serde, parameters, _ = serde_and_table(glue_database, "breaks")
    table_rows = opencsv.read_table(stack.landed("fidelity/breaks/part.csv"), len(NAMES), serde, parameters)
    assert len(table_rows) == 12  # 10 records, two of them split in two (CR LF is one line end)
    assert table_rows[:8] == EXPECTED_TABLE_TEXT
    # Each half leaves a quote open, and Trino drops an unterminated field and all after it.
    assert table_rows[8:] == [["id-9"] + [None] * 8, [None] * 9, ["id-10"] + [None] * 8, [None] * 9]
    # Parquet reads the same audience faithfully.
    parquet = land(stack, "fidelity/breaks-parquet/part.parquet", data=data)
    assert parquet.status == 200, parquet.body
    read = pq.read_table(io.BytesIO(stack.landed("fidelity/breaks-parquet/part.parquet")))
    assert read.column("note").to_pylist()[8:] == ["two\nlines", "cr\r\nlf"]
