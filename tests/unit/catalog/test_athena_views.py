"""The typed view over a CSV table: its SQL, types and Glue form, checked on data."""

from __future__ import annotations

import base64
import datetime as dt
import json
from decimal import Decimal
from typing import Any

import duckdb

from tests.support.helpers import every_type_schema
from transforms.catalog.athena import create_table_ddl, table_input, typed_view_sql, view_input

# Every column of every_type_schema() as text, and what the view must make of it. Garbage reads
# NULL in every type: a query over the view never fails, whatever CI360 sent.
COLUMNS = ["customer_id", "age", "rank", "flag_byte", "score", "ratio", "lifetime_value", "signup",
           "last_seen", "vip", "email"]
CASES = [
    (["9223372036854775807", "  42 ", "-7", "1", "1e3", "0.5", "19.99", "0001-01-01",
      "1969-12-31 23:59:59.9995", "Y", "a\\b"],
     [2**63 - 1, 42, -7, 1, 1000.0, 0.5, Decimal("19.99"), dt.date(1, 1, 1),
      dt.datetime(1969, 12, 31, 23, 59, 59, 999000), True, "a\\b"]),
    (["", "", "", "", "", "", "", "", "", "", ""], [None] * 11),
    (["-9223372036854775808", "0", "0", "0", "-0.25", "-1", "-0.01", "9999-12-31",
      "2024-03-05T12:34:56.123456789", "n", " "],
     [-2**63, 0, 0, 0, -0.25, -1.0, Decimal("-0.01"), dt.date(9999, 12, 31),
      dt.datetime(2024, 3, 5, 12, 34, 56, 123000), False, " "]),
    (["9223372036854775808", "12.5", "0x10", "+1", "abc", "x", "abc", "2024-02-30",
      "2024-03-05 12:34:56+02:00", "maybe", "x"],
     [None, None, None, None, None, None, None, None, None, None, "x"]),
    (["1", "2", "3", "4", "5", "6", "7", "2024-3-5", "2024-03-05 12:34", "TRUE", "y"],
     [1, 2, 3, 4, 5.0, 6.0, Decimal("7.00"), None, dt.datetime(2024, 3, 5, 12, 34), True, "y"]),
]


def run_in_duckdb(sql: str, rows: list[list[str | None]], columns: list[str]) -> list[tuple[Any, ...]]:
    """Trino's regexp_like is DuckDB's regexp_matches; the rest of the view's SQL is common to both."""
    con = duckdb.connect()
    con.execute(f"CREATE TABLE aud ({', '.join(f'{c} VARCHAR' for c in columns)})")
    con.executemany(f"INSERT INTO aud VALUES ({', '.join('?' for _ in columns)})", rows)
    return con.sql(sql.replace("regexp_like(", "regexp_matches(")).fetchall()


def test_the_view_types_every_column_and_never_fails() -> None:
    sql = typed_view_sql(every_type_schema(), "aud")
    assert run_in_duckdb(sql, [text for text, _ in CASES], COLUMNS) == [tuple(typed) for _, typed in CASES]


def test_the_views_column_types_are_the_schemas() -> None:
    con = duckdb.connect()
    con.execute(f"CREATE TABLE aud ({', '.join(f'{c} VARCHAR' for c in COLUMNS)})")
    described = con.sql(typed_view_sql(every_type_schema(), "aud").replace("regexp_like(", "regexp_matches("))
    assert dict(zip(described.columns, map(str, described.types), strict=True)) == {
        "customer_id": "BIGINT", "age": "INTEGER", "rank": "SMALLINT", "flag_byte": "TINYINT",
        "score": "DOUBLE", "ratio": "FLOAT", "lifetime_value": "DECIMAL(12,2)", "signup": "DATE",
        "last_seen": "TIMESTAMP", "vip": "BOOLEAN", "email": "VARCHAR"}


def test_the_glue_view_is_stored_as_athena_stores_views() -> None:
    """Trino's ViewReaderUtil: VIRTUAL_VIEW, presto_view=true, comment "Presto View", base64 JSON."""
    view = view_input(every_type_schema(), "aud", "mkt", partitions=["dt"])
    assert view["Name"] == "aud_typed" and view["TableType"] == "VIRTUAL_VIEW"
    assert view["Parameters"] == {"presto_view": "true", "comment": "Presto View"}
    assert view["ViewExpandedText"] == "/* Presto View */"
    text = view["ViewOriginalText"]
    assert text.startswith("/* Presto View: ") and text.endswith(" */")
    definition = json.loads(base64.b64decode(text[16:-3], validate=True))
    assert definition["originalSql"] == typed_view_sql(every_type_schema(), "aud", database="mkt",
                                                       partitions=["dt"])
    assert definition["originalSql"].endswith('FROM "mkt"."aud"')
    assert (definition["catalog"], definition["schema"]) == ("awsdatacatalog", "mkt")
    assert {c["name"]: c["type"] for c in definition["columns"]} == {
        "customer_id": "bigint", "age": "integer", "rank": "smallint", "flag_byte": "tinyint",
        "score": "double", "ratio": "real", "lifetime_value": "decimal(12,2)", "signup": "date",
        "last_seen": "timestamp", "vip": "boolean", "email": "varchar", "dt": "varchar"}
    hive = {c["Name"]: c["Type"] for c in view["StorageDescriptor"]["Columns"]}
    assert hive["ratio"] == "float" and hive["dt"] == "string" and hive["lifetime_value"] == "decimal(12,2)"


def test_csv_serde_has_no_escape_character_in_glue_and_in_the_ddl() -> None:
    built = table_input(every_type_schema(), "s3://b/aud/", "csv", table="aud")
    assert built["StorageDescriptor"]["SerdeInfo"]["Parameters"] == {
        "separatorChar": ",", "quoteChar": '"', "escapeChar": "\0"}
    ddl = create_table_ddl(every_type_schema(), "s3://b/aud/", "csv", table="aud")
    assert "  'escapeChar' = '\\0'\n" in ddl  # Hive's string literal for NUL (unescapeSQLString)
    assert "\0" not in ddl
