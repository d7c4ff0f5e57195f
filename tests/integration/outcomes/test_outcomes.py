"""Every final outcome, back to CI360 as an external event and out to EventBridge: through the webhook and
the worker, against the fake CI360 gateway (devstack/ci360_gateway.py, verifying the JWT with joserfc) and
moto's EventBridge, whose rule routes the events to a queue this test reads, all over HTTP on 127.0.0.1.

CI360's gateway is plain http on 127.0.0.1 here, which only a local invoke (IS_LOCAL) allows."""

from __future__ import annotations

import base64
import json
import logging
import time
import uuid
from typing import Any

import boto3
import pytest

from devstack.ci360_gateway import FakeCI360Gateway
from devstack.localstack import webhook_payload
from handler import worker
from handler.webhook import handle as webhook_handle
from tests.support.faultserver import Script
from tests.support.helpers import (
    DATA,
    HEADER,
    JSON_LAYOUT,
    AsyncStack,
    LambdaContext,
    Stack,
    api_gateway_event,
    get_job,
    invoke,
)
from tests.support.outcomes import SECRET, TENANT, TRACKING, Bus, told
from transforms.outcomes.ci360_event import bearer_token


def webhook(stack: Stack, key: str, data: bytes = DATA, **params: str):
    data_url, metadata_url = stack.stage(data, JSON_LAYOUT)
    payload = webhook_payload(data_url, metadata_url, key, **params)
    return payload, invoke(api_gateway_event(payload))


# -- what each outcome tells ------------------------------------------------------------------------

def test_a_sync_landing_is_told_once_to_ci360_and_eventbridge(async_stack: AsyncStack, outcomes: None,
                                                             gateway: FakeCI360Gateway, bus: Bus) -> None:
    payload, response = webhook(async_stack.stack, "told/audience.csv", processing_mode="sync")
    occurrence_id = payload["task"]["occurrenceId"]
    assert response.status == 200 and async_stack.stack.landed("told/audience.csv") == HEADER + DATA
    result = response.body
    assert told(gateway) == {
        "eventName": "ci360_s3_connector_outcome", "subject_id": "ci360-s3-connector",
        "status": "succeeded", "occurrenceId": occurrence_id, "taskId": payload["task"]["taskId"],
        "taskName": "AWS S3 Upload", "responseTrackingCode": TRACKING, "bucket": async_stack.stack.target,
        "key": "told/audience.csv", "format": "csv", "rows": "4", "bytesWritten": str(result["bytesWritten"]),
        "seconds": str(result["seconds"]), "errorCode": "", "errorMessage": ""}
    (event,) = bus.events()
    assert (event["source"], event["detail-type"]) == ("ci360.s3-connector", "Audience landed")
    detail = event["detail"]
    assert detail["key"] == "told/audience.csv" and detail["rows"] == 4 and detail["format"] == "csv"
    assert detail["checksum"] == result["checksum"] and detail["occurrenceId"] == occurrence_id
    assert detail["responseTrackingCode"] == TRACKING and detail["mode"] == "sync"
    assert result["events"] == {"ci360": {"delivered": True, "attempts": 1, "status": 201},
                                "eventBridge": {"delivered": True, "attempts": 1, "status": 200,
                                                "eventId": event["id"]}}
    record = get_job(occurrence_id)[1]
    assert record["events"] == result["events"] == record["result"]["events"]
    # CI360 calls again: the first answer, and nothing new told.
    again = invoke(api_gateway_event(payload))
    assert again.status == 200 and again.body == result
    assert len(gateway.requests) == 1 and bus.events(wait_s=0) == []


class ShortOfTime(LambdaContext):
    def get_remaining_time_in_millis(self) -> int:
        return 2_500  # inside the webhook's 3 s margin: the landing stops at once


def conflict(stack: Stack, fault_server: Any) -> tuple[dict, str]:
    stack.s3.put_object(Bucket=stack.target, Key="exists.csv", Body=b"earlier")
    data_url, metadata_url = stack.stage(DATA, JSON_LAYOUT)
    return webhook_payload(data_url, metadata_url, "exists.csv", overwrite="false"), "LambdaContext"


def bad_value(stack: Stack, fault_server: Any) -> tuple[dict, str]:
    data_url, metadata_url = stack.stage(b"id-1,not-a-number,a@example.com,2021-03-04\n", JSON_LAYOUT)
    return webhook_payload(data_url, metadata_url, "bad.parquet",
                           column_types='{"external_id": "bigint"}'), "LambdaContext"


def source_gone(stack: Stack, fault_server: Any) -> tuple[dict, str]:
    _, metadata_url = stack.stage(b"", JSON_LAYOUT)
    gone = fault_server.url("/gone", Script(404, b"<Error><Code>NoSuchKey</Code></Error>"))
    return webhook_payload(gone, metadata_url, "gone.csv"), "LambdaContext"


def out_of_time(stack: Stack, fault_server: Any) -> tuple[dict, str]:
    data_url, metadata_url = stack.stage(DATA, JSON_LAYOUT)
    return webhook_payload(data_url, metadata_url, "late.csv"), "ShortOfTime"


@pytest.mark.parametrize(("case", "status", "code"), [
    (bad_value, 422, "BAD_VALUE"), (conflict, 409, "CONFLICT"), (source_gone, 502, "SOURCE_ERROR"),
    (out_of_time, 504, "DEADLINE_EXCEEDED"),
], ids=lambda v: getattr(v, "__name__", str(v)))
def test_a_sync_failure_is_told_once(async_stack: AsyncStack, outcomes: None, gateway: FakeCI360Gateway,
                                     bus: Bus, fault_server: Any, monkeypatch, case, status: int,
                                     code: str) -> None:
    monkeypatch.setenv("processing_mode", "sync")
    payload, context = case(async_stack.stack, fault_server)
    raw = webhook_handle(api_gateway_event(payload), ShortOfTime() if context == "ShortOfTime"
                         else LambdaContext())
    body = json.loads(raw["body"])
    assert raw["statusCode"] == status and body["error"]["code"] == code
    event = told(gateway)
    assert event["status"] == "failed" and event["errorCode"] == code
    assert event["errorMessage"] == body["error"]["message"]
    assert event["occurrenceId"] == payload["task"]["occurrenceId"] and event["rows"] == ""
    (failed,) = bus.events()
    assert failed["detail-type"] == "Audience failed"
    assert failed["detail"]["error"]["code"] == code and failed["detail"]["status"] == "failed"
    assert async_stack.stack.pending_uploads() == []
    record = get_job(payload["task"]["occurrenceId"])
    if record[0] == 200:  # refused before any record (409, checked first): nothing to write the report on
        assert record[1]["events"]["ci360"] == {"delivered": True, "attempts": 1, "status": 201}


def test_an_async_landing_is_told_by_the_worker_once(async_stack: AsyncStack, outcomes: None,
                                                     gateway: FakeCI360Gateway, bus: Bus,
                                                     monkeypatch) -> None:
    monkeypatch.setenv("processing_mode", "async")
    payload, accepted = webhook(async_stack.stack, "later.parquet")
    assert accepted.status == 202
    assert gateway.requests == [] and bus.events(wait_s=0) == []  # accepted is not an outcome
    assert invoke(api_gateway_event(payload)).status == 202  # nor is a repeat of it
    message = async_stack.sqs_event()
    worker.handle(message, LambdaContext())
    event = told(gateway)
    assert event["status"] == "succeeded" and event["format"] == "parquet" and event["rows"] == "4"
    (landed,) = bus.events()
    assert landed["detail-type"] == "Audience landed" and landed["detail"]["mode"] == "async"
    assert landed["detail"]["schema"] and landed["detail"]["key"] == "later.parquet"
    # SQS delivers the message again, and CI360 repeats the webhook: nothing new is told.
    worker.handle(message, LambdaContext())
    repeat = invoke(api_gateway_event(payload))
    assert repeat.status == 200 and repeat.body["events"]["ci360"]["delivered"] is True
    assert len(gateway.requests) == 1 and bus.events(wait_s=0) == []
    assert async_stack.versions("later.parquet") == 1


def test_an_async_refusal_is_told_at_once(async_stack: AsyncStack, outcomes: None, gateway: FakeCI360Gateway,
                                          bus: Bus, fault_server: Any, monkeypatch) -> None:
    monkeypatch.setenv("processing_mode", "async")
    _, metadata_url = async_stack.stack.stage(b"", JSON_LAYOUT)
    expired = fault_server.url("/expired", Script(403, b"<Error><Code>AccessDenied</Code></Error>"))
    payload = webhook_payload(expired, metadata_url, "expired.csv")
    assert invoke(api_gateway_event(payload)).status == 202
    worker.handle(async_stack.sqs_event(), LambdaContext())  # consumed: retrying cannot help
    event = told(gateway)
    assert (event["status"], event["errorCode"]) == ("failed", "SOURCE_ERROR")
    (failed,) = bus.events()
    assert failed["detail-type"] == "Audience failed" and failed["detail"]["mode"] == "async"
    record = get_job(payload["task"]["occurrenceId"])[1]
    assert record["status"] == "failed" and record["events"]["ci360"]["delivered"] is True


def test_a_transient_failure_is_told_only_on_the_last_receive(async_stack: AsyncStack, outcomes: None,
                                                              gateway: FakeCI360Gateway, bus: Bus,
                                                              fault_server: Any, monkeypatch) -> None:
    monkeypatch.setenv("processing_mode", "async")
    monkeypatch.setenv("jobs_max_receives", "2")
    _, metadata_url = async_stack.stack.stage(b"", JSON_LAYOUT)
    busy = fault_server.url("/busy", Script(503, b"<Error><Code>SlowDown</Code></Error>"))
    payload = webhook_payload(busy, metadata_url, "busy.csv")
    assert invoke(api_gateway_event(payload)).status == 202
    first = async_stack.sqs_event()
    assert first["Records"][0]["attributes"]["ApproximateReceiveCount"] == "1"
    with pytest.raises(Exception, match="503"):
        worker.handle(first, LambdaContext())
    assert gateway.requests == [] and bus.events(wait_s=0) == []  # SQS will try again: not final
    last = async_stack.sqs_event()
    assert last["Records"][0]["attributes"]["ApproximateReceiveCount"] == "2"
    with pytest.raises(Exception, match="503"):
        worker.handle(last, LambdaContext())  # raised still: SQS moves it to the dead-letter queue
    event = told(gateway)
    assert (event["status"], event["errorCode"]) == ("failed", "SOURCE_ERROR")
    assert [e["detail-type"] for e in bus.events()] == ["Audience failed"]


def test_a_failed_job_run_again_tells_its_new_outcome(async_stack: AsyncStack, outcomes: None,
                                                      gateway: FakeCI360Gateway, bus: Bus,
                                                      fault_server: Any) -> None:
    _, metadata_url = async_stack.stack.stage(b"", JSON_LAYOUT)
    source = fault_server.url("/later", Script(503, b"<Error><Code>SlowDown</Code></Error>"))
    payload = webhook_payload(source, metadata_url, "again.csv", processing_mode="sync")
    assert invoke(api_gateway_event(payload)).status == 502
    fault_server.scripts["/later"] = Script(200, DATA)
    assert invoke(api_gateway_event(payload)).status == 200  # CI360 calls again: run again, and landed
    assert [e["status"] for e in gateway.received] == ["failed", "succeeded"]
    assert sorted(e["detail-type"] for e in bus.events()) == ["Audience failed", "Audience landed"]
    assert invoke(api_gateway_event(payload)).status == 200  # and again: the first answer, nothing new
    assert len(gateway.received) == 2 and bus.events(wait_s=0) == []


# -- CI360's gateway misbehaving: bounded, retried where it helps, never the landing's concern ---------

def test_a_hanging_gateway_is_bounded_and_the_landing_stands(stack: Stack, outcomes: None,
                                                             gateway: FakeCI360Gateway, bus: Bus,
                                                             monkeypatch) -> None:
    gateway.mode = "hang"
    monkeypatch.setenv("ci360_events_timeout_s", "2")
    started = time.monotonic()
    _, response = webhook(stack, "hung.csv")
    took = time.monotonic() - started
    assert response.status == 200 and stack.landed("hung.csv") == HEADER + DATA
    report = response.body["events"]
    assert report["ci360"]["delivered"] is False and report["ci360"]["error"] == "timed out"
    assert report["ci360"]["attempts"] >= 2 and took < 6
    assert report["eventBridge"]["delivered"] is True


def test_500_then_200_is_retried(stack: Stack, outcomes: None, gateway: FakeCI360Gateway, bus: Bus) -> None:
    gateway.fail_first = 1
    _, response = webhook(stack, "flaky.csv")
    assert response.status == 200
    assert response.body["events"]["ci360"] == {"delivered": True, "attempts": 2, "status": 201}
    assert [r.status for r in gateway.requests] == [500, 201] and told(gateway)["status"] == "succeeded"


def test_each_delivery_is_counted_by_channel_and_whether_it_was_delivered(
        stack: Stack, outcomes: None, gateway: FakeCI360Gateway, bus: Bus, capsys) -> None:
    gateway.mode = "refuse"
    capsys.readouterr()
    assert webhook(stack, "counted.csv")[1].status == 200
    counted = [json.loads(line) for line in capsys.readouterr().out.splitlines()
               if line.startswith("{") and '"OutcomeEvents"' in line]
    assert sorted((d["channel"], d["delivered"], d["OutcomeEvents"]) for d in counted) == [
        ("ci360", "false", [1]), ("eventBridge", "true", [1])]


def test_401_is_not_retried_and_the_landing_stands(async_stack: AsyncStack, outcomes: None,
                                                    gateway: FakeCI360Gateway, bus: Bus) -> None:
    gateway.mode = "refuse"
    payload, response = webhook(async_stack.stack, "refused.csv", processing_mode="sync")
    assert response.status == 200 and async_stack.stack.landed("refused.csv") == HEADER + DATA
    assert response.body["events"]["ci360"] == {"delivered": False, "attempts": 1, "status": 401,
                                                "error": "CI360 answered 401"}
    assert len(gateway.requests) == 1
    record = get_job(payload["task"]["occurrenceId"])[1]
    assert record["status"] == "succeeded" and record["events"]["ci360"]["delivered"] is False


def test_a_failed_put_never_fails_the_landing(stack: Stack, outcomes: None, gateway: FakeCI360Gateway,
                                              monkeypatch) -> None:
    monkeypatch.setenv("event_bus_name", f"no-such-bus-{uuid.uuid4().hex[:6]}")
    _, response = webhook(stack, "unbussed.csv")
    assert response.status == 200 and stack.landed("unbussed.csv") == HEADER + DATA
    assert response.body["events"]["eventBridge"]["delivered"] is False
    assert response.body["events"]["eventBridge"]["error"] == "ResourceNotFoundException"
    assert told(gateway)["status"] == "succeeded"  # CI360 is told all the same


def test_without_an_events_url_ci360_hears_nothing(stack: Stack, gateway: FakeCI360Gateway, bus: Bus,
                                                   monkeypatch) -> None:
    monkeypatch.setenv("event_bus_name", bus.name)
    _, response = webhook(stack, "quiet.csv")
    assert response.status == 200 and set(response.body["events"]) == {"eventBridge"}
    assert gateway.requests == [] and [e["detail-type"] for e in bus.events()] == ["Audience landed"]


# -- the secret ------------------------------------------------------------------------------------

def test_the_secret_from_secrets_manager_never_reaches_a_log_line_at_debug(
        async_stack: AsyncStack, gateway: FakeCI360Gateway, bus: Bus, fault_server: Any, monkeypatch,
        caplog: pytest.LogCaptureFixture, lambda_logs) -> None:
    from handler.runtime import logger

    arn = boto3.client("secretsmanager").create_secret(
        Name=f"ci360-{uuid.uuid4().hex[:8]}", SecretString=json.dumps({"client_secret": SECRET}))["ARN"]
    for name, value in {"IS_LOCAL": "true", "ci360_events_url": gateway.url, "ci360_tenant_id": TENANT,
                        "ci360_client_secret_arn": arn, "event_bus_name": bus.name}.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("ci360_client_secret", raising=False)
    level = logger.log_level
    logger.setLevel("DEBUG")
    try:
        with caplog.at_level(logging.DEBUG):
            webhook(async_stack.stack, "secret.csv", processing_mode="sync")
            _, metadata_url = async_stack.stack.stage(b"", JSON_LAYOUT)
            gone = fault_server.url("/gone", Script(404, b"<Error><Code>NoSuchKey</Code></Error>"))
            invoke(api_gateway_event(webhook_payload(gone, metadata_url, "gone.csv", processing_mode="sync")))
    finally:
        logger.setLevel(level)
    assert [e["status"] for e in gateway.received] == ["succeeded", "failed"]  # the secret was used
    logs = caplog.text + lambda_logs.getvalue()
    assert "GetSecretValue" in logs or "secretsmanager" in logs  # botocore did log the call at DEBUG
    for secret in (SECRET, base64.b64encode(SECRET.encode()).decode(), bearer_token(TENANT, SECRET)):
        assert secret not in logs


def test_a_secret_rotated_while_the_container_is_warm_is_read_again(
        async_stack: AsyncStack, gateway: FakeCI360Gateway, bus: Bus, monkeypatch) -> None:
    """The gateway knows SECRET; Secrets Manager first holds an older one. A refused token makes the
    function read the secret again: unchanged, the event is refused; rotated, it is signed again and
    delivered, and the next landing (same warm container) signs with the new one at once."""
    from transforms.outcomes import client_secret

    secrets = boto3.client("secretsmanager")
    before = json.dumps({"client_secret": "the-secret-before-rotation"})
    arn = secrets.create_secret(Name=f"ci360-{uuid.uuid4().hex[:8]}", SecretString=before)["ARN"]
    for name, value in {"IS_LOCAL": "true", "ci360_events_url": gateway.url, "ci360_tenant_id": TENANT,
                        "ci360_client_secret_arn": arn, "event_bus_name": bus.name}.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("ci360_client_secret", raising=False)
    _, first = webhook(async_stack.stack, "rotation/before.csv", processing_mode="sync")
    assert first.status == 200
    assert first.body["events"]["ci360"] == {"delivered": False, "attempts": 1, "status": 401,
                                             "error": "CI360 answered 401"}
    secrets.put_secret_value(SecretId=arn, SecretString=json.dumps({"client_secret": SECRET}))
    monkeypatch.setattr(client_secret, "REFRESH_EVERY_S", 0.0)  # as if the interval since the re-read passed
    _, second = webhook(async_stack.stack, "rotation/after.csv", processing_mode="sync")
    assert second.body["events"]["ci360"] == {"delivered": True, "attempts": 2, "status": 201}
    _, third = webhook(async_stack.stack, "rotation/later.csv", processing_mode="sync")
    assert third.body["events"]["ci360"] == {"delivered": True, "attempts": 1, "status": 201}
    assert [r.status for r in gateway.requests] == [401, 401, 201, 201]
    assert [e["key"] for e in gateway.received] == ["rotation/after.csv", "rotation/later.csv"]
    assert async_stack.stack.landed("rotation/before.csv") == HEADER + DATA
