"""Glue registration against moto's Glue, over HTTP like every other AWS test here."""

from __future__ import annotations

from typing import Any

import pytest

from tests.support.helpers import glue_schema
from transforms.catalog.glue import register_table
from transforms.errors import CatalogError, ConfigurationError


def columns(table: dict[str, Any]) -> dict[str, str]:
    return {c["Name"]: c["Type"] for c in table["StorageDescriptor"]["Columns"]}


def test_creates_the_table_for_the_keys_folder(glue: Any, database: str) -> None:
    result = register_table(glue, database, bucket="target", key="exports/ci360-audience/run1.parquet",
                            schema=glue_schema(), fmt="parquet", csv_header=True)
    assert result == {"registered": True, "database": database, "table": "ci360_audience",
                      "location": "s3://target/exports/ci360-audience/", "partition": None,
                      "action": "created", "warning": None}
    table = glue.get_table(DatabaseName=database, Name="ci360_audience")["Table"]
    assert table["TableType"] == "EXTERNAL_TABLE"
    assert table["Parameters"]["classification"] == "parquet"
    assert table["PartitionKeys"] == []
    descriptor = table["StorageDescriptor"]
    assert descriptor["Location"] == "s3://target/exports/ci360-audience/"
    assert descriptor["SerdeInfo"]["SerializationLibrary"].endswith("ParquetHiveSerDe")
    assert columns(table) == {"customer_id": "double", "email": "string", "signup": "date"}


def test_a_second_run_with_a_changed_schema_updates_the_table(glue: Any, database: str) -> None:
    register_table(glue, database, bucket="target", key="exports/aud/a.parquet", schema=glue_schema(),
                   fmt="parquet", csv_header=True)
    # A property set by someone else (partition projection, a description) survives our update.
    table = glue.get_table(DatabaseName=database, Name="aud")["Table"]
    glue.update_table(DatabaseName=database, TableInput={
        "Name": "aud", "TableType": "EXTERNAL_TABLE", "StorageDescriptor": table["StorageDescriptor"],
        "Parameters": {**table["Parameters"], "comment": "owned by the data team"}})

    result = register_table(glue, database, bucket="target", key="exports/aud/b.parquet",
                            schema=glue_schema(**{"Customer ID": "bigint"}), fmt="parquet", csv_header=True)
    assert result["action"] == "updated" and result["registered"] and result["warning"] is None
    table = glue.get_table(DatabaseName=database, Name="aud")["Table"]
    assert columns(table)["customer_id"] == "bigint"
    assert table["Parameters"]["comment"] == "owned by the data team"


def test_registers_the_partition_in_the_key(glue: Any, database: str) -> None:
    result = register_table(glue, database, bucket="target", key="exports/aud/dt=2026-11-23/region=eu/a.csv",
                            schema=glue_schema(), fmt="csv.gz", csv_header=True)
    assert result["location"] == "s3://target/exports/aud/"
    assert result["partition"] == {"dt": "2026-11-23", "region": "eu"}
    table = glue.get_table(DatabaseName=database, Name="aud")["Table"]
    assert [k["Name"] for k in table["PartitionKeys"]] == ["dt", "region"]
    assert table["Parameters"]["skip.header.line.count"] == "1"
    assert table["StorageDescriptor"]["SerdeInfo"]["SerializationLibrary"].endswith("OpenCSVSerde")
    assert columns(table)["signup"] == "string"  # OpenCSVSerDe cannot read a date as text
    partition = glue.get_partition(DatabaseName=database, TableName="aud",
                                   PartitionValues=["2026-11-23", "eu"])["Partition"]
    assert partition["StorageDescriptor"]["Location"] == "s3://target/exports/aud/dt=2026-11-23/region=eu/"
    assert columns(partition) == columns(table)


def test_two_partitions_in_one_table_and_a_rerun_is_tolerated(glue: Any, database: str) -> None:
    for day in ("2026-11-23", "2026-11-24", "2026-11-24"):
        result = register_table(glue, database, bucket="target", key=f"aud/dt={day}/a.jsonl",
                                schema=glue_schema(), fmt="jsonl", csv_header=True)
        assert result["registered"] and result["partition"] == {"dt": day}
    partitions = glue.get_partitions(DatabaseName=database, TableName="aud")["Partitions"]
    assert sorted(p["Values"][0] for p in partitions) == ["2026-11-23", "2026-11-24"]
    assert len(glue.get_tables(DatabaseName=database)["TableList"]) == 1


def test_a_rerun_with_a_changed_schema_updates_the_partition_too(glue: Any, database: str) -> None:
    key = "aud/dt=2026-11-23/a.parquet"
    register_table(glue, database, bucket="target", key=key, schema=glue_schema(), fmt="parquet",
                   csv_header=True)
    register_table(glue, database, bucket="target", key=key, schema=glue_schema(**{"Customer ID": "bigint"}),
                   fmt="parquet", csv_header=True)
    partition = glue.get_partition(DatabaseName=database, TableName="aud",
                                   PartitionValues=["2026-11-23"])["Partition"]
    assert columns(partition)["customer_id"] == "bigint"


@pytest.mark.parametrize("key", ["audience.csv", "dt=2026-11-23/audience.csv"])
def test_a_key_at_the_bucket_root_registers_nothing_and_says_why(glue: Any, database: str, key: str) -> None:
    result = register_table(glue, database, bucket="target", key=key, schema=glue_schema(), fmt="csv",
                            csv_header=True)
    assert result["registered"] is False and result["table"] is None
    assert "bucket root" in result["warning"]
    assert glue.get_tables(DatabaseName=database)["TableList"] == []


def test_a_partition_named_like_a_column_registers_nothing(glue: Any, database: str) -> None:
    result = register_table(glue, database, bucket="target", key="aud/email=x/a.csv", schema=glue_schema(),
                            fmt="csv", csv_header=True)
    assert result["registered"] is False and "email" in result["warning"]
    assert glue.get_tables(DatabaseName=database)["TableList"] == []


def test_changed_partition_columns_leave_the_table_alone(glue: Any, database: str) -> None:
    register_table(glue, database, bucket="target", key="aud/dt=1/a.csv", schema=glue_schema(), fmt="csv",
                   csv_header=True)
    result = register_table(glue, database, bucket="target", key="aud/a.csv", schema=glue_schema(), fmt="csv",
                            csv_header=True)
    assert result["registered"] is False and result["action"] == "unchanged"
    assert "partitioned by (dt)" in result["warning"]
    table = glue.get_table(DatabaseName=database, Name="aud")["Table"]
    assert [k["Name"] for k in table["PartitionKeys"]] == ["dt"]


def test_a_changed_format_updates_with_a_warning(glue: Any, database: str) -> None:
    register_table(glue, database, bucket="target", key="aud/a.csv", schema=glue_schema(), fmt="csv",
                   csv_header=True)
    result = register_table(glue, database, bucket="target", key="aud/a.parquet", schema=glue_schema(),
                            fmt="parquet", csv_header=True)
    assert result["action"] == "updated" and "was csv and is now parquet" in result["warning"]
    table = glue.get_table(DatabaseName=database, Name="aud")["Table"]
    assert "skip.header.line.count" not in table["Parameters"]


def test_an_explicit_table_name(glue: Any, database: str) -> None:
    result = register_table(glue, database, bucket="target", key="a/b.orc", schema=glue_schema(), fmt="orc",
                            csv_header=True, table="Audience_2026")
    assert result["table"] == "audience_2026"
    assert glue.get_table(DatabaseName=database, Name="audience_2026")["Table"]["Parameters"][
        "classification"] == "orc"


def test_a_missing_database_is_a_catalog_error_with_glues_code(glue: Any) -> None:
    with pytest.raises(CatalogError) as caught:
        register_table(glue, "no_such_db", bucket="target", key="a/b.csv", schema=glue_schema(), fmt="csv",
                       csv_header=True)
    error = caught.value
    assert error.code == "GLUE_ERROR" and error.glue_code == "EntityNotFoundException"
    assert error.details == [{"glueErrorCode": "EntityNotFoundException"}]
    assert "no_such_db" in error.message and "An error occurred" not in error.message


def test_an_invalid_database_name_is_a_configuration_error(glue: Any) -> None:
    with pytest.raises(ConfigurationError):
        register_table(glue, "my-db", bucket="target", key="a/b.csv", schema=glue_schema(), fmt="csv",
                       csv_header=True)
