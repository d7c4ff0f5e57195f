"""Past API Gateway's 29 s: queued jobs, the worker, job records, and exactly-once landing.

SQS and DynamoDB are moto's, over HTTP, like S3; the worker is invoked with the SQS event Lambda
would build from the queued message.
"""

from __future__ import annotations

import pytest

from devstack.localstack import webhook_payload
from handler import worker
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
from transforms.errors import SourceError


def webhook(stack: Stack, key: str, data: bytes = DATA, occurrence_id: str | None = None, **params: str):
    data_url, metadata_url = stack.stage(data, JSON_LAYOUT)
    payload = webhook_payload(data_url, metadata_url, key, occurrence_id, **params)
    return payload, invoke(api_gateway_event(payload))


def test_small_file_in_auto_mode_lands_at_once(async_stack: AsyncStack) -> None:
    payload, response = webhook(async_stack.stack, "small.csv")
    assert response.status == 200, response.body
    assert async_stack.stack.landed("small.csv") == HEADER + DATA
    assert async_stack.queued() == []
    status, record = get_job(payload["task"]["occurrenceId"])
    assert status == 200
    assert record["status"] == "succeeded" and record["mode"] == "sync" and record["rows"] == 4
    assert record["result"]["key"] == "small.csv"


def test_large_file_is_queued_answered_202_then_landed_by_the_worker(async_stack: AsyncStack,
                                                                     monkeypatch) -> None:
    monkeypatch.setenv("sync_max_mb", "0")  # every non-empty file counts as large
    payload, response = webhook(async_stack.stack, "big.parquet")
    occurrence_id = payload["task"]["occurrenceId"]
    assert response.status == 202, response.body
    assert response.body["jobId"] == occurrence_id and response.body["status"] == "accepted"
    assert async_stack.stack.target_keys() == []  # nothing lands before the worker runs
    assert get_job(occurrence_id)[1]["status"] == "accepted"
    assert worker.handle(async_stack.sqs_event(), LambdaContext()) is None
    status, record = get_job(occurrence_id)
    assert record["status"] == "succeeded" and record["mode"] == "async"
    assert record["rows"] == 4 and record["result"]["format"] == "parquet"
    assert async_stack.stack.target_keys() == ["big.parquet"]


def test_duplicate_webhooks_queue_once_and_then_answer_with_the_result(async_stack: AsyncStack,
                                                                       monkeypatch) -> None:
    monkeypatch.setenv("processing_mode", "async")
    payload, first = webhook(async_stack.stack, "dup.csv")
    second = invoke(api_gateway_event(payload))
    assert (first.status, second.status) == (202, 202)
    assert second.body["jobId"] == first.body["jobId"]
    event = async_stack.sqs_event()  # exactly one message queued
    worker.handle(event, LambdaContext())
    third = invoke(api_gateway_event(payload))
    assert third.status == 200 and third.body["key"] == "dup.csv" and third.body["rows"] == 4
    assert async_stack.versions("dup.csv") == 1


def test_duplicate_sqs_delivery_writes_once(async_stack: AsyncStack, monkeypatch) -> None:
    monkeypatch.setenv("processing_mode", "async")
    webhook(async_stack.stack, "redelivered.csv")
    event = async_stack.sqs_event()
    worker.handle(event, LambdaContext())
    worker.handle(event, LambdaContext())  # SQS delivers at least once
    assert async_stack.versions("redelivered.csv") == 1
    assert async_stack.stack.landed("redelivered.csv") == HEADER + DATA


def test_duplicate_sync_webhook_writes_once_and_answers_the_same(async_stack: AsyncStack) -> None:
    payload, first = webhook(async_stack.stack, "twice.csv", processing_mode="sync")
    second = invoke(api_gateway_event(payload))
    assert first.status == second.status == 200
    assert first.body == second.body
    assert async_stack.versions("twice.csv") == 1


def test_permanent_failure_is_recorded_and_the_message_consumed(async_stack: AsyncStack, fault_server,
                                                                monkeypatch) -> None:
    monkeypatch.setenv("processing_mode", "async")
    _, metadata_url = async_stack.stack.stage(b"", JSON_LAYOUT)
    missing = Script(404, b"<Error><Code>NoSuchKey</Code></Error>")
    payload = webhook_payload(fault_server.url("/gone", missing), metadata_url, "gone.csv")
    assert invoke(api_gateway_event(payload)).status == 202
    worker.handle(async_stack.sqs_event(), LambdaContext())  # does not raise: retrying cannot help
    record = get_job(payload["task"]["occurrenceId"])[1]
    assert record["status"] == "failed" and record["error"]["code"] == "SOURCE_ERROR"
    assert async_stack.stack.target_keys() == [] and async_stack.stack.pending_uploads() == []


def test_transient_failure_is_raised_for_sqs_to_redeliver(async_stack: AsyncStack, fault_server,
                                                          monkeypatch) -> None:
    monkeypatch.setenv("processing_mode", "async")
    _, metadata_url = async_stack.stack.stage(b"", JSON_LAYOUT)
    payload = webhook_payload(fault_server.url("/busy", Script(503, b"<Error><Code>SlowDown</Code></Error>")),
                              metadata_url, "busy.csv")
    assert invoke(api_gateway_event(payload)).status == 202
    with pytest.raises(SourceError, match="503"):
        worker.handle(async_stack.sqs_event(), LambdaContext())
    assert get_job(payload["task"]["occurrenceId"])[1]["status"] == "failed"
    # A failed landing leaves no idempotency record: the redelivery runs again and lands.
    fault_server.scripts["/busy"] = Script(200, DATA)
    worker.handle(async_stack.sqs_event(), LambdaContext())
    assert get_job(payload["task"]["occurrenceId"])[1]["status"] == "succeeded"
    assert async_stack.stack.landed("busy.csv") == HEADER + DATA


class ShortOfTime(LambdaContext):
    def get_remaining_time_in_millis(self) -> int:
        return 15_000  # inside the worker's 20 s margin


def test_worker_deadline_aborts_cleanly_and_records_the_failure(async_stack: AsyncStack, monkeypatch) -> None:
    monkeypatch.setenv("processing_mode", "async")
    payload, _ = webhook(async_stack.stack, "late.csv")
    worker.handle(async_stack.sqs_event(), ShortOfTime())
    record = get_job(payload["task"]["occurrenceId"])[1]
    assert record["status"] == "failed" and record["error"]["code"] == "DEADLINE_EXCEEDED"
    assert async_stack.stack.target_keys() == [] and async_stack.stack.pending_uploads() == []


def test_bad_layout_is_refused_before_anything_is_queued(async_stack: AsyncStack, monkeypatch) -> None:
    monkeypatch.setenv("processing_mode", "async")
    data_url, metadata_url = async_stack.stack.stage(DATA, b"[]")
    response = invoke(api_gateway_event(webhook_payload(data_url, metadata_url, "x.csv")))
    assert response.status == 422
    assert async_stack.queued() == []


def test_unknown_job_is_a_404(async_stack: AsyncStack) -> None:
    status, body = get_job("no-such-occurrence")
    assert status == 404 and body["error"]["code"] == "NOT_FOUND"


def test_async_without_a_queue_refuses_the_call_or_the_deployment(stack: Stack, monkeypatch) -> None:
    # Asked for by the call: the call is refused (422), the deployment is fine for every other call.
    _, response = webhook(stack, "x.csv", processing_mode="async")
    assert response.status == 422 and "jobs_queue" in response.body["error"]["message"]
    assert response.body["error"]["details"] == [{"field": "sendParameters.processing_mode"}]
    # The deployment's own default: a configuration error.
    monkeypatch.setenv("processing_mode", "async")
    _, response = webhook(stack, "x.csv")
    assert response.status == 500 and "jobs_queue" in response.body["error"]["message"]


def test_repeated_webhook_with_a_timestamp_key_lands_once(async_stack: AsyncStack, monkeypatch) -> None:
    """The key renders differently on the second call; the landing is still the first one."""
    import datetime as dt

    import transforms.ci360.payload

    start = dt.datetime(2026, 11, 23, 10, 0, 0, tzinfo=dt.UTC)
    times = iter([start, start + dt.timedelta(seconds=7)])
    monkeypatch.setattr(transforms.ci360.payload, "utc_now", lambda: next(times))
    payload, first = webhook(async_stack.stack, "runs/{timestamp}.csv", processing_mode="sync")
    second = invoke(api_gateway_event(payload))
    assert first.status == second.status == 200
    assert second.body["key"] == first.body["key"] == "runs/20261123T100000Z.csv"
    assert async_stack.stack.target_keys() == ["runs/20261123T100000Z.csv"]
