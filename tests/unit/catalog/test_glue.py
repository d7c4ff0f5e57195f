"""Glue registration when Glue cannot be reached: a catalog error, on a refusing port of 127.0.0.1.
The registrations themselves run against moto in tests/integration/catalog/test_glue.py."""

from __future__ import annotations

import boto3
import pytest
from botocore.config import Config

from tests.support.helpers import glue_schema
from transforms.catalog.glue import register_table
from transforms.errors import CatalogError


def test_an_unreachable_glue_is_a_catalog_error(refusing_port: int) -> None:
    dead = boto3.client("glue", endpoint_url=f"http://127.0.0.1:{refusing_port}",
                        config=Config(retries={"max_attempts": 1}, connect_timeout=1))
    with pytest.raises(CatalogError) as caught:
        register_table(dead, "db", bucket="target", key="a/b.csv", schema=glue_schema(), fmt="csv",
                       csv_header=True)
    assert caught.value.glue_code == "EndpointConnectionError"
    assert "127.0.0.1" not in caught.value.message
