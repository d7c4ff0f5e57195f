"""Server-side encryption on every landed object: SSE-S3 by default, SSE-KMS under kms_key_id when set.

Through the Lambda handler against moto's server (S3 and KMS), read back with head_object: the
single-PUT path (small files), the multipart path and a typed (Parquet) target alike.
"""

from __future__ import annotations

import json
from typing import Any

import boto3
import pytest

from tests.conftest import Stack, api_gateway_event, invoke
from tests.localstack import webhook_payload

LAYOUT = json.dumps([
    {"columnName": "identity_id", "dataType": "CHARACTER"},
    {"columnName": "external_id", "dataType": "NUMERIC"},
]).encode()
SMALL = b"a-1,1\na-2,2\n"
LARGE = b"".join(b"id-%08d,%d\n" % (n, n) for n in range(400_000))  # ~7 MB: two 5 MiB parts


@pytest.fixture(autouse=True)
def local_sources(monkeypatch: pytest.MonkeyPatch) -> None:
    """Presigned URLs point at moto on 127.0.0.1; small parts so that 7 MB goes multipart."""
    monkeypatch.setenv("source_host_allowlist", "http://127.0.0.1:*")
    monkeypatch.setenv("part_size_mb", "5")
    monkeypatch.setenv("processing_mode", "sync")
    monkeypatch.delenv("kms_key_id", raising=False)


def land(stack: Stack, key: str, data: bytes) -> dict[str, Any]:
    data_url, metadata_url = stack.stage(data, LAYOUT)
    response = invoke(api_gateway_event(webhook_payload(data_url, metadata_url, key)))
    assert response.status == 200, response.body
    return stack.s3.head_object(Bucket=stack.target, Key=key)


CASES = [("out/small.csv", SMALL), ("out/large.csv", LARGE), ("out/small.parquet", SMALL)]


@pytest.mark.parametrize(("key", "data"), CASES, ids=["put", "multipart", "parquet"])
def test_sse_s3_by_default(stack: Stack, key: str, data: bytes) -> None:
    head = land(stack, key, data)
    assert head["ServerSideEncryption"] == "AES256"
    assert "SSEKMSKeyId" not in head
    if data is LARGE:
        assert head["ETag"].strip('"').endswith("-2")  # really the multipart path


@pytest.mark.parametrize(("key", "data"), CASES, ids=["put", "multipart", "parquet"])
def test_sse_kms_under_the_configured_key(stack: Stack, monkeypatch: pytest.MonkeyPatch, key: str,
                                          data: bytes) -> None:
    kms = boto3.client("kms")
    key_arn = kms.create_key(Description="ci360 connector test")["KeyMetadata"]["Arn"]
    monkeypatch.setenv("kms_key_id", key_arn)
    head = land(stack, key, data)
    assert head["ServerSideEncryption"] == "aws:kms"
    assert head["SSEKMSKeyId"] == key_arn
    if data is LARGE:
        assert head["ETag"].strip('"').endswith("-2")
