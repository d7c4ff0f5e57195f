"""Server-side encryption of landed objects (README, "Encryption").

By default the sink sends no encryption header, so the bucket's default encryption applies: a bucket
whose default is SSE-KMS under the customer's key keeps it. `kms_key_id` asks for SSE-KMS under that
key; `encryption=sse-s3` forces SSE-S3. Through the Lambda handler against moto's server (S3 and KMS),
read back with head_object: the single-PUT path, the multipart path and a typed (Parquet) target.
moto applies a bucket's default encryption as S3 does (checked below on objects sent without a header).
"""

from __future__ import annotations

import json
from typing import Any

import boto3
import pytest

from devstack.localstack import webhook_payload
from tests.support.helpers import Stack, api_gateway_event, invoke

LAYOUT = json.dumps([
    {"columnName": "identity_id", "dataType": "CHARACTER"},
    {"columnName": "external_id", "dataType": "NUMERIC"},
]).encode()
SMALL = b"a-1,1\na-2,2\n"
LARGE = b"".join(b"id-%08d,%d\n" % (n, n) for n in range(400_000))  # ~7 MB: two 5 MiB parts
CASES = [("out/small.csv", SMALL), ("out/large.csv", LARGE), ("out/small.parquet", SMALL)]
IDS = ["put", "multipart", "parquet"]


@pytest.fixture(autouse=True)
def local_sources(monkeypatch: pytest.MonkeyPatch) -> None:
    """Presigned URLs point at moto on 127.0.0.1; small parts so that 7 MB goes multipart."""
    monkeypatch.setenv("source_host_allowlist", "http://127.0.0.1:*")
    monkeypatch.setenv("part_size_mb", "5")
    monkeypatch.setenv("processing_mode", "sync")
    monkeypatch.delenv("kms_key_id", raising=False)
    monkeypatch.delenv("encryption", raising=False)


def kms_key() -> str:
    return boto3.client("kms").create_key(Description="ci360 connector test")["KeyMetadata"]["Arn"]


def bucket_default(stack: Stack, algorithm: str, key_arn: str | None = None) -> None:
    rule: dict[str, Any] = {"SSEAlgorithm": algorithm}
    if key_arn:
        rule["KMSMasterKeyID"] = key_arn
    stack.s3.put_bucket_encryption(Bucket=stack.target, ServerSideEncryptionConfiguration={
        "Rules": [{"ApplyServerSideEncryptionByDefault": rule, "BucketKeyEnabled": True}]})


def land(stack: Stack, key: str, data: bytes) -> dict[str, Any]:
    data_url, metadata_url = stack.stage(data, LAYOUT)
    response = invoke(api_gateway_event(webhook_payload(data_url, metadata_url, key)))
    assert response.status == 200, response.body
    head = stack.s3.head_object(Bucket=stack.target, Key=key)
    if data is LARGE:
        assert head["ETag"].strip('"').endswith("-2")  # really the multipart path
    return head


@pytest.mark.parametrize(("key", "data"), CASES, ids=IDS)
def test_a_bucket_defaulting_to_sse_kms_keeps_its_key(stack: Stack, key: str, data: bytes) -> None:
    key_arn = kms_key()
    bucket_default(stack, "aws:kms", key_arn)
    head = land(stack, key, data)
    assert head["ServerSideEncryption"] == "aws:kms"
    assert head["SSEKMSKeyId"] == key_arn


def test_a_bucket_defaulting_to_sse_s3_gets_sse_s3(stack: Stack) -> None:
    bucket_default(stack, "AES256")
    assert land(stack, "out/small.csv", SMALL)["ServerSideEncryption"] == "AES256"


@pytest.mark.parametrize(("key", "data"), CASES, ids=IDS)
def test_sse_kms_under_the_configured_key(stack: Stack, monkeypatch: pytest.MonkeyPatch, key: str,
                                          data: bytes) -> None:
    bucket_default(stack, "AES256")  # the setting wins over the bucket's default
    key_arn = kms_key()
    monkeypatch.setenv("kms_key_id", key_arn)
    head = land(stack, key, data)
    assert head["ServerSideEncryption"] == "aws:kms"
    assert head["SSEKMSKeyId"] == key_arn


@pytest.mark.parametrize(("key", "data"), CASES, ids=IDS)
def test_sse_s3_can_be_forced_over_the_buckets_kms_default(stack: Stack, monkeypatch: pytest.MonkeyPatch,
                                                           key: str, data: bytes) -> None:
    bucket_default(stack, "aws:kms", kms_key())
    monkeypatch.setenv("encryption", "sse-s3")
    head = land(stack, key, data)
    assert head["ServerSideEncryption"] == "AES256"
    assert "SSEKMSKeyId" not in head


def test_a_refused_encryption_setting_is_500_and_nothing_is_written(stack: Stack,
                                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("encryption", "sse-kms")
    data_url, metadata_url = stack.stage(SMALL, LAYOUT)
    response = invoke(api_gateway_event(webhook_payload(data_url, metadata_url, "out/x.csv")))
    assert response.status == 500
    assert response.body["error"]["code"] == "CONFIGURATION_ERROR"
    assert stack.target_keys() == []
