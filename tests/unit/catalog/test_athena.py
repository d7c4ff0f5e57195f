"""Athena DDL and the Glue table description it is rendered from: pure, no AWS."""

from __future__ import annotations

import io
import json
import re

import pytest

from tests.support.helpers import every_type_schema
from transforms.catalog.athena import (
    FORMAT_NAMES,
    create_table_ddl,
    partition_input,
    partitions_in_key,
    table_format,
    table_input,
    table_location,
    table_name,
)


def declared_columns(ddl: str) -> dict[str, str]:
    """Column name -> type from the column list of a DDL statement (not the partition columns)."""
    body = ddl.split("CREATE EXTERNAL TABLE IF NOT EXISTS", 1)[1].split("\n)\n", 1)[0]
    return dict(re.findall(r"^  `([^`]+)` (\S+?)(?: COMMENT '.*')?,?$", body, flags=re.M))


# -- keys, locations, names ------------------------------------------------------------------------

@pytest.mark.parametrize(("key", "expected"), [
    ("a/dt=2026-11-23/region=eu/file.parquet", [("dt", "2026-11-23"), ("region", "eu")]),
    ("a/b/file.csv", []),
    ("file.csv", []),
    ("a/dt=1/b/file.csv", []),  # only the trailing run of the folder counts
    ("a/DT=1/file.csv", [("dt", "1")]),  # names lowercased, as Glue's catalog is
    ("a/q=x=y/file.csv", [("q", "x=y")]),
    ("a/dt=/file.csv", []),  # an empty value is no partition
    ("a/dt=1/dt=2/file.csv", [("dt", "2")]),  # a repeated name ends the run
    ("a/dt=1/file=x.csv", [("dt", "1")]),  # the file name is never a partition
])
def test_partitions_in_key(key: str, expected: list[tuple[str, str]]) -> None:
    assert partitions_in_key(key) == expected


@pytest.mark.parametrize(("key", "location", "partitions"), [
    ("a/dt=2026-11-23/region=eu/file.parquet", "s3://b/a/", [("dt", "2026-11-23"), ("region", "eu")]),
    ("exports/audience/file.csv", "s3://b/exports/audience/", []),
    ("a/dt=1/b/file.csv", "s3://b/a/dt=1/b/", []),
    ("file.csv", None, []),
    ("dt=2026-11-23/file.csv", None, [("dt", "2026-11-23")]),
])
def test_table_location_is_the_folder_above_the_partitions(
        key: str, location: str | None, partitions: list[tuple[str, str]]) -> None:
    assert table_location("b", key) == (location, partitions)


@pytest.mark.parametrize(("location", "name"), [
    ("s3://b/exports/CI360-Audience/", "ci360_audience"),
    ("s3://b/2026/", "_2026"),
    ("s3://my-bucket/", "my_bucket"),
])
def test_table_name_from_the_last_folder(location: str, name: str) -> None:
    assert table_name(location) == name


# -- DDL per format --------------------------------------------------------------------------------

@pytest.mark.parametrize("fmt", ["csv", "csv.gz", "csv.bz2", "csv.zst"])
def test_csv_ddl_uses_opencsvserde_and_skips_the_header(fmt: str) -> None:
    ddl = create_table_ddl(every_type_schema(), "s3://b/exports/aud/", fmt, table="aud")
    assert "ROW FORMAT SERDE 'org.apache.hadoop.hive.serde2.OpenCSVSerde'" in ddl
    assert "'separatorChar' = ','" in ddl and "'quoteChar' = '\"'" in ddl
    assert "'skip.header.line.count' = '1'" in ddl
    assert "STORED AS INPUTFORMAT 'org.apache.hadoop.mapred.TextInputFormat'" in ddl
    assert "LOCATION 's3://b/exports/aud/'" in ddl
    assert ddl.startswith("--") and ddl.rstrip().endswith(";")


def test_csv_ddl_declares_every_column_string_and_types_them_in_a_view() -> None:
    """OpenCSVSerDe fails a query on an empty field in a numeric column: the table is all text."""
    ddl = create_table_ddl(every_type_schema(), "s3://b/aud/", "csv", table="aud")
    assert set(declared_columns(ddl).values()) == {"string"}
    assert "`signup` string COMMENT 'date in the typed view'" in ddl
    assert "  `email` string\n)" in ddl  # a string column needs no comment
    assert 'CREATE OR REPLACE VIEW "aud_typed" AS' in ddl
    assert 'TRY_CAST(NULLIF(trim("lifetime_value"), \'\') AS decimal(12,2)) AS "lifetime_value"' in ddl
    assert ddl.rstrip().endswith('FROM "aud";')
    comments = [line for line in ddl.splitlines() if line.startswith("--")]
    assert any("line break" in line for line in comments)
    assert any(".parquet" in line for line in comments)


def test_csv_without_header_has_no_skip_property() -> None:
    ddl = create_table_ddl(every_type_schema(), "s3://b/aud/", "csv", table="aud", csv_header=False)
    assert "skip.header.line.count" not in ddl
    assert "'classification' = 'csv'" in ddl


def test_parquet_ddl_declares_the_schema_types_exactly() -> None:
    ddl = create_table_ddl(every_type_schema(), "s3://b/aud/", "parquet", table="aud")
    assert "STORED AS PARQUET" in ddl and "SERDE" not in ddl
    assert "--" not in ddl and "skip.header" not in ddl
    assert declared_columns(ddl) == {
        "customer_id": "bigint", "age": "int", "rank": "smallint", "flag_byte": "tinyint",
        "score": "double", "ratio": "float", "lifetime_value": "decimal(12,2)", "signup": "date",
        "last_seen": "timestamp", "vip": "boolean", "email": "string",
    }


@pytest.mark.parametrize("fmt", ["jsonl", "jsonl.gz"])
def test_json_ddl_uses_the_openx_serde(fmt: str) -> None:
    ddl = create_table_ddl(every_type_schema(), "s3://b/aud/", fmt, table="aud")
    assert "ROW FORMAT SERDE 'org.openx.data.jsonserde.JsonSerDe'" in ddl
    assert "'classification' = 'json'" in ddl
    assert declared_columns(ddl)["last_seen"] == "timestamp"


def test_orc_ddl() -> None:
    ddl = create_table_ddl(every_type_schema(), "s3://b/aud/", "orc", table="aud")
    assert "STORED AS ORC" in ddl
    assert declared_columns(ddl)["lifetime_value"] == "decimal(12,2)"


def test_partitions_database_and_quoting() -> None:
    ddl = create_table_ddl(every_type_schema(), "s3://b/it's/", "parquet", table="aud",
                           database="Analytics", partitions=["dt", "region"])
    assert "CREATE EXTERNAL TABLE IF NOT EXISTS `analytics`.`aud` (" in ddl
    assert "PARTITIONED BY (`dt` string, `region` string)" in ddl
    assert "LOCATION 's3://b/it\\'s/'" in ddl


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"location": "s3://b/aud"}, "ending in '/'"),
    ({"location": "b/aud/"}, "s3://"),
    ({"fmt": "xlsx"}, "no Athena table format"),
    ({"table": "my-table"}, "letters, digits and underscores"),
    ({"partitions": ["email"]}, "also a data column"),
    ({"partitions": ["dt", "DT"]}, "repeat a name"),
])
def test_refusals(kwargs: dict, message: str) -> None:
    args = {"location": "s3://b/aud/", "fmt": "parquet", "table": "aud", **kwargs}
    with pytest.raises(ValueError, match=re.escape(message)):
        create_table_ddl(every_type_schema(), args.pop("location"), args.pop("fmt"), **args)


def test_each_formats_table_is_its_registry_entrys() -> None:
    """The writer and its table are declared together: what a CSV passthrough writes is read by the
    CSV SerDe, what a typed format writes by its own SerDe, never one table kept in step with another."""
    from transforms.formats.registry import registered_formats

    for fmt in registered_formats():
        assert table_format(fmt.name) is fmt.table
        assert fmt.table.csv == (not fmt.typed), fmt.name
        assert fmt.table.classification == fmt.name.split(".")[0].replace("jsonl", "json"), fmt.name
    assert set(FORMAT_NAMES) == {fmt.name for fmt in registered_formats()}


# -- one description for DDL and Glue ------------------------------------------------------------

@pytest.mark.parametrize("fmt", FORMAT_NAMES)
def test_ddl_and_glue_table_input_agree(fmt: str) -> None:
    schema = every_type_schema()
    built = table_input(schema, "s3://b/aud/", fmt, table="aud", partitions=["dt"])
    ddl = create_table_ddl(schema, "s3://b/aud/", fmt, table="aud", partitions=["dt"])
    descriptor = built["StorageDescriptor"]
    assert declared_columns(ddl) == {c["Name"]: c["Type"] for c in descriptor["Columns"]}
    assert built["PartitionKeys"] == [{"Name": "dt", "Type": "string"}]
    assert f"'classification' = '{built['Parameters']['classification']}'" in ddl
    assert ("skip.header.line.count" in ddl) == ("skip.header.line.count" in built["Parameters"])
    assert built["TableType"] == "EXTERNAL_TABLE" and built["Parameters"]["EXTERNAL"] == "TRUE"
    if "STORED AS INPUTFORMAT" in ddl:  # the long form names the same classes as Glue gets
        assert descriptor["SerdeInfo"]["SerializationLibrary"] in ddl
        assert descriptor["InputFormat"] in ddl and descriptor["OutputFormat"] in ddl
    partition = partition_input(built, ["2026-11-23"], "s3://b/aud/dt=2026-11-23/")
    assert partition["StorageDescriptor"]["Columns"] == descriptor["Columns"]
    assert partition["StorageDescriptor"]["Location"] == "s3://b/aud/dt=2026-11-23/"
    assert descriptor["Location"] == "s3://b/aud/"  # the table's own descriptor is untouched


def test_parquet_ddl_matches_what_pyarrow_writes() -> None:
    """Write the schema as the Parquet writer does and read the file's types back as Athena's."""
    pa = pytest.importorskip("pyarrow")
    pq = pytest.importorskip("pyarrow.parquet")
    from transforms.schema.arrow import arrow_type

    schema = every_type_schema()
    arrow_schema = pa.schema([(f.name, arrow_type(f.type)) for f in schema.fields])
    buffer = io.BytesIO()
    pq.write_table(arrow_schema.empty_table(), buffer, coerce_timestamps="ms",
                   use_deprecated_int96_timestamps=False)
    written = pq.ParquetFile(io.BytesIO(buffer.getvalue())).schema

    def athena(column: object) -> str:
        logical = column.logical_type
        kind = logical.type
        if kind == "STRING":
            return "string"
        if kind == "DATE":
            return "date"
        if kind == "TIMESTAMP":
            assert json.loads(logical.to_json())["timeUnit"] == "milliseconds"
            assert column.physical_type == "INT64"
            return "timestamp"
        if kind == "DECIMAL":
            return f"decimal({column.precision},{column.scale})"
        if kind == "INT":
            info = json.loads(logical.to_json())
            assert info["isSigned"]
            return {64: "bigint", 32: "int", 16: "smallint", 8: "tinyint"}[info["bitWidth"]]
        return {"DOUBLE": "double", "FLOAT": "float", "BOOLEAN": "boolean", "INT64": "bigint",
                "INT32": "int"}[column.physical_type]

    from_file = {written.column(i).name: athena(written.column(i)) for i in range(len(written))}
    ddl = create_table_ddl(schema, "s3://b/aud/", "parquet", table="aud")
    assert declared_columns(ddl) == from_file
