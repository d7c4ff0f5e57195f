"""The outcome, out to EventBridge: the event a data team's rule matches, and a failed put reported."""

from __future__ import annotations

import json

from botocore.exceptions import ClientError, EndpointConnectionError

from devstack.localstack import webhook_payload
from transforms.ci360.payload import parse_job
from transforms.errors import BadValueError
from transforms.outcomes.eventbridge import FAILED, LANDED, SOURCE, entry, put
from transforms.outcomes.final import Final
from transforms.settings import Settings

SETTINGS = Settings.from_env({"s3_bucket_name": "target", "source_host_allowlist": "https://*.example"})
RESULT = {"status": "succeeded", "occurrenceId": "occ-1", "bucket": "target", "key": "a/b.parquet",
          "format": "parquet", "rows": 4, "schema": {"id": "bigint"}, "checksum": {"algorithm": "CRC32"},
          "glue": {"database": "db", "table": "a"}, "url": "https://target/a?X-Amz-Signature=s",
          "events": {"ci360": {"delivered": True}}}


def job():
    url = "https://staging.example/x_data?X-Amz-Signature=s"
    return parse_job(webhook_payload(url, url, "a/b.parquet", "occ-1"), SETTINGS)


def test_a_landing_is_the_result_with_its_task() -> None:
    event = entry(Final.of(job(), RESULT, "async"), "my-bus")
    assert (event["Source"], event["DetailType"], event["EventBusName"]) == (SOURCE, LANDED, "my-bus")
    detail = json.loads(event["Detail"])
    assert detail["key"] == "a/b.parquet" and detail["rows"] == 4 and detail["glue"]["table"] == "a"
    assert detail["schema"] == {"id": "bigint"} and detail["checksum"] == {"algorithm": "CRC32"}
    assert detail["mode"] == "async"
    assert detail["responseTrackingCode"] == "55e09dc2-1303-4be2-aa0f-3d9877154a27"
    assert "url" not in detail and "events" not in detail  # no credential-carrying link on a bus


def test_a_failure_is_the_error_with_its_task() -> None:
    event = entry(Final.of(job(), BadValueError(3, "age", "x", "bigint"), "sync"), "default")
    assert event["DetailType"] == FAILED
    detail = json.loads(event["Detail"])
    assert detail["status"] == "failed" and detail["keys"] == ["a/b.parquet"]
    assert detail["error"]["code"] == "BAD_VALUE" and detail["error"]["details"][0]["column"] == "age"


class Events:
    def __init__(self, answer) -> None:
        self.answer = answer

    def put_events(self, Entries):  # noqa: N803 (boto3's name)
        if isinstance(self.answer, Exception):
            raise self.answer
        return self.answer


def test_put_is_delivered_only_with_an_event_id() -> None:
    ok = put(Events({"FailedEntryCount": 0, "Entries": [{"EventId": "e-1"}],
                     "ResponseMetadata": {"HTTPStatusCode": 200}}), {})
    assert ok.to_json() == {"delivered": True, "attempts": 1, "status": 200, "eventId": "e-1"}
    refused = put(Events({"FailedEntryCount": 1, "Entries": [{"ErrorCode": "InternalFailure"}],
                          "ResponseMetadata": {"HTTPStatusCode": 200}}), {})
    assert refused.to_json() == {"delivered": False, "attempts": 1, "status": 200, "error": "InternalFailure"}


def test_a_refusal_or_no_answer_is_reported_not_raised() -> None:
    denied = ClientError({"Error": {"Code": "AccessDeniedException"},
                          "ResponseMetadata": {"HTTPStatusCode": 400}}, "PutEvents")
    assert put(Events(denied), {}).to_json() == {"delivered": False, "attempts": 1, "status": 400,
                                                 "error": "AccessDeniedException"}
    gone = put(Events(EndpointConnectionError(endpoint_url="https://events")), {})
    assert not gone.delivered and gone.error == "EndpointConnectionError"
