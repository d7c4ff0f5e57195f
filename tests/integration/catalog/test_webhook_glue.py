"""The webhook registers what landed in Glue when ``glue_database`` is set (moto's Glue over HTTP)."""

from __future__ import annotations

import boto3

from devstack.localstack import webhook_payload
from tests.support.helpers import TYPED_COLUMN_TYPES as COLUMN_TYPES
from tests.support.helpers import TYPED_DATA as DATA
from tests.support.helpers import TYPED_LAYOUT as LAYOUT
from tests.support.helpers import Stack, api_gateway_event, invoke


def land(stack: Stack, key: str):
    data_url, metadata_url = stack.stage(DATA, LAYOUT)
    return invoke(api_gateway_event(webhook_payload(data_url, metadata_url, key, column_types=COLUMN_TYPES)))


def test_parquet_landing_creates_the_table_and_its_partition(stack: Stack, glue_database: str) -> None:
    response = land(stack, "ci360/audience/dt=2026-11-23/part.parquet")
    assert response.status == 200, response.body
    glue = response.body["glue"]
    assert glue["registered"] is True and glue["table"] == "audience"
    assert glue["location"] == f"s3://{stack.target}/ci360/audience/"
    assert glue["partition"] == {"dt": "2026-11-23"}
    table = boto3.client("glue").get_table(DatabaseName=glue_database, Name="audience")["Table"]
    columns = {c["Name"]: c["Type"] for c in table["StorageDescriptor"]["Columns"]}
    assert columns["order_total"] == "decimal(12,2)" and columns["last_order_dttm"] == "timestamp"
    assert [k["Name"] for k in table["PartitionKeys"]] == ["dt"]
    partitions = boto3.client("glue").get_partitions(DatabaseName=glue_database, TableName="audience")
    assert [p["Values"] for p in partitions["Partitions"]] == [["2026-11-23"]]


def test_key_at_the_bucket_root_lands_but_registers_no_table(stack: Stack, glue_database: str) -> None:
    response = land(stack, "root.parquet")
    assert response.status == 200
    assert response.body["glue"]["registered"] is False
    assert "root" in response.body["glue"]["warning"]
    assert stack.target_keys() == ["root.parquet"]
    assert boto3.client("glue").get_tables(DatabaseName=glue_database)["TableList"] == []


def test_missing_database_is_reported_but_the_object_stays(stack: Stack, monkeypatch) -> None:
    monkeypatch.setenv("glue_database", "no_such_database")
    response = land(stack, "x/y.parquet")
    assert response.status == 200
    assert response.body["glue"]["registered"] is False
    assert response.body["glue"]["error"]["code"] == "GLUE_ERROR"
    assert stack.target_keys() == ["x/y.parquet"]
