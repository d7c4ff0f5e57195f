"""Every refusal: the right status, a SAS-style JSON error naming what is wrong, and nothing in S3."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

import pytest

from devstack.localstack import webhook_payload
from tests.support.faultserver import EXPIRED_XML, Script
from tests.support.helpers import DATA, JSON_LAYOUT, Response, Stack, api_gateway_event, invoke


def assert_error(response: Response, status: int, code: str, mentions: str) -> dict[str, Any]:
    assert response.status == status, response.body
    error = response.body["error"]
    assert error["code"] == code
    assert mentions in error["message"]
    assert error["requestId"]
    datetime.fromisoformat(error["timestamp"])
    return error


def assert_nothing_landed(stack: Stack) -> None:
    assert stack.target_keys() == []
    assert stack.pending_uploads() == []


def payload_for(stack: Stack, filename: str = "out.csv") -> dict[str, Any]:
    data_url, metadata_url = stack.stage(DATA, JSON_LAYOUT)
    return webhook_payload(data_url, metadata_url, filename)


@pytest.mark.parametrize(("mutate", "field"), [
    (lambda p: p.pop("presignedUrls"), "presignedUrls"),
    (lambda p: p["presignedUrls"].pop("dataFile"), "presignedUrls.dataFile"),
    (lambda p: p["presignedUrls"].__setitem__("metadataFile", "ftp://x/y"), "presignedUrls.metadataFile"),
    (lambda p: p["task"].pop("occurrenceId"), "task.occurrenceId"),
    (lambda p: p.__setitem__("task", "not an object"), "task"),
    (lambda p: p.pop("sendParameters"), "sendParameters"),
    (lambda p: p["sendParameters"].clear(), "sendParameters.s3_filename"),
    (lambda p: p["sendParameters"].__setitem__("s3_filename ", "   "), "sendParameters.s3_filename"),
    (lambda p: p["sendParameters"].__setitem__("s3_filename ", "/abs.csv"), "sendParameters.s3_filename"),
    (lambda p: p["sendParameters"].__setitem__("s3_filename ", "a/../b.csv"), "sendParameters.s3_filename"),
    (lambda p: p["sendParameters"].__setitem__("s3_filename ", "x" * 1025), "sendParameters.s3_filename"),
    (lambda p: p["sendParameters"].__setitem__("csv_header", "maybe"), "sendParameters.csv_header"),
])
def test_malformed_payload_is_a_400_naming_the_field(stack: Stack, mutate, field: str) -> None:
    payload = payload_for(stack)
    mutate(payload)
    error = assert_error(invoke(api_gateway_event(payload)), 400, "VALIDATION_ERROR", field)
    assert {"field": field} in error["details"]
    assert_nothing_landed(stack)


@pytest.mark.parametrize(("event", "mentions"), [
    ({"body": "{not json", "isBase64Encoded": False}, "not valid JSON"),
    ({"body": "%%%not base64", "isBase64Encoded": True}, "base64"),
    ({"body": "[1, 2]", "isBase64Encoded": False}, "JSON object"),
    ({"body": "", "isBase64Encoded": False}, "empty"),
    ({"httpMethod": "POST"}, "no body"),
])
def test_unreadable_body_is_a_400(stack: Stack, event: dict[str, Any], mentions: str) -> None:
    assert_error(invoke(event), 400, "VALIDATION_ERROR", mentions)
    assert_nothing_landed(stack)


def test_missing_bucket_setting_is_a_500_configuration_error(stack: Stack, monkeypatch) -> None:
    monkeypatch.delenv("s3_bucket_name")
    assert_error(invoke(api_gateway_event(payload_for(stack))), 500, "CONFIGURATION_ERROR", "s3_bucket_name")
    assert_nothing_landed(stack)


def test_missing_data_file_is_a_502_naming_the_data_file(stack: Stack) -> None:
    payload = payload_for(stack)
    stack.s3.delete_object(Bucket=stack.staging, Key=_key_of(payload["presignedUrls"]["dataFile"]))
    error = assert_error(invoke(api_gateway_event(payload)), 502, "SOURCE_ERROR", "data file")
    assert "404" in error["message"] and "NoSuchKey" in error["message"]
    assert error["details"] == [{"file": "data", "upstreamStatus": 404}]
    assert_nothing_landed(stack)


def test_missing_metadata_file_is_a_502_naming_the_metadata_file(stack: Stack) -> None:
    payload = payload_for(stack)
    stack.s3.delete_object(Bucket=stack.staging, Key=_key_of(payload["presignedUrls"]["metadataFile"]))
    error = assert_error(invoke(api_gateway_event(payload)), 502, "SOURCE_ERROR", "metadata file")
    assert error["details"][0]["file"] == "metadata"
    assert_nothing_landed(stack)


def test_expired_presigned_url_is_a_502_that_says_access_was_refused(stack: Stack, fault_server) -> None:
    payload = payload_for(stack)
    payload["presignedUrls"]["dataFile"] = fault_server.url("/expired_data", Script(403, EXPIRED_XML))
    error = assert_error(invoke(api_gateway_event(payload)), 502, "SOURCE_ERROR", "data file")
    assert "403" in error["message"] and "AccessDenied" in error["message"]
    assert "expired" in error["message"]
    assert_nothing_landed(stack)


def test_unreachable_source_is_a_502(stack: Stack, refusing_port: int) -> None:
    payload = payload_for(stack)
    payload["presignedUrls"]["dataFile"] = f"http://127.0.0.1:{refusing_port}/gone?X-Amz-Signature=abc"
    assert_error(invoke(api_gateway_event(payload)), 502, "SOURCE_ERROR", "could not be reached")
    assert_nothing_landed(stack)


def test_silent_source_is_a_504(stack: Stack, fault_server, monkeypatch) -> None:
    monkeypatch.setenv("read_timeout", "0.5")
    payload = payload_for(stack)
    payload["presignedUrls"]["dataFile"] = fault_server.url("/slow", Script(200, DATA, delay=3))
    error = assert_error(invoke(api_gateway_event(payload)), 504, "SOURCE_ERROR", "timed out")
    assert error["details"][0]["file"] == "data"
    assert_nothing_landed(stack)


@pytest.mark.parametrize("filename", ["cut.csv", "cut.csv.gz"])
def test_body_shorter_than_its_length_fails_and_aborts_the_upload(stack: Stack, fault_server, monkeypatch,
                                                                  filename: str) -> None:
    """12 MiB of a promised 20 MiB: parts were already uploading, and the upload must be aborted."""
    monkeypatch.setenv("part_size_mb", "5")
    body = (b"0d4a1b2c-0000-4000-8000-000000000001,100001,ana@example.com,2021-03-04\n" * 200_000)[:12 << 20]
    payload = payload_for(stack, filename)
    payload["presignedUrls"]["dataFile"] = fault_server.url(
        "/short", Script(200, body, promised_length=20 << 20))
    error = assert_error(invoke(api_gateway_event(payload)), 502, "SOURCE_ERROR", "broke off")
    assert error["details"][0]["file"] == "data"
    assert_nothing_landed(stack)


def test_missing_target_bucket_is_a_502_with_the_s3_error_code(stack: Stack, monkeypatch) -> None:
    monkeypatch.setenv("s3_bucket_name", "no-such-bucket-for-this-test")
    error = assert_error(invoke(api_gateway_event(payload_for(stack))), 502, "S3_ERROR", "NoSuchBucket")
    assert error["details"] == [{"s3ErrorCode": "NoSuchBucket"}]


@pytest.mark.parametrize(("layout", "mentions"), [
    (b"", "empty"),
    (b"[]", "no columns"),
    (b'[{"dataType": "NUMERIC"}]', "no columnName"),
    (b"a,b,a", "twice"),
    (b"[{", "not valid JSON"),
    (b"\xff\xfe", "UTF-8"),
])
def test_unusable_metadata_is_a_422(stack: Stack, layout: bytes, mentions: str) -> None:
    data_url, metadata_url = stack.stage(DATA, layout)
    response = invoke(api_gateway_event(webhook_payload(data_url, metadata_url, "m.csv")))
    assert_error(response, 422, "INVALID_METADATA", mentions)
    assert_nothing_landed(stack)


def test_no_secret_reaches_logs_or_responses(stack: Stack, fault_server, lambda_logs, caplog,
                                            refusing_port: int) -> None:
    """Presigned URLs are credentials: neither their signature nor their token may be printed."""
    ok = invoke(api_gateway_event(payload_for(stack)))
    payload = payload_for(stack, "fail.csv")
    payload["presignedUrls"]["dataFile"] = fault_server.url("/denied", Script(403, EXPIRED_XML))
    failed = invoke(api_gateway_event(payload))
    payload["presignedUrls"]["dataFile"] = f"http://127.0.0.1:{refusing_port}/x?X-Amz-Signature=deadbeefsignature"
    unreachable = invoke(api_gateway_event(payload))
    printed = lambda_logs.getvalue()
    everything = printed + caplog.text + json.dumps([ok.raw, failed.raw, unreachable.raw])
    assert "Retrying" in caplog.text  # urllib3 did log the retries: they were scrubbed, not missed
    assert ok.status == 200 and failed.status == 502 and unreachable.status == 502
    for secret in ("X-Amz-Signature", "X-Amz-Credential", "X-Amz-Security-Token", "deadbeefsignature",
                   "SECRETTOKEN"):
        assert secret not in everything
    records = [json.loads(line) for line in printed.splitlines()]
    failure = next(r for r in records if r["correlation_id"] == payload["task"]["occurrenceId"])
    assert failure["message"] == "fetching metadata"
    assert failure["metadata_url"].endswith("_metadata")  # logged, without its query string


def _key_of(url: str) -> str:
    from urllib.parse import unquote, urlsplit

    return unquote(urlsplit(url).path.split("/", 2)[2])
