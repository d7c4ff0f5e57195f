"""Exactly once across the webhook and the worker, and the first answer to every repeat.

The webhook and the worker run as the two functions of a deployment: each under its own
AWS_LAMBDA_FUNCTION_NAME and Lambda context, and in processes of their own where they overlap. S3
(versioned, so a second landing shows as a second version), SQS and DynamoDB are moto's server over
HTTP; DynamoDB's throttling comes from a proxy in front of it (tests/support/dynamodb_proxy.py).
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import boto3
import pytest
import yaml

from devstack.localstack import create_job_stack, webhook_payload
from handler import jobs as jobs_handler
from handler import runtime, webhook, worker
from tests.support.dynamodb_proxy import THROTTLED, DynamoDBProxy
from tests.support.faultserver import Script
from tests.support.helpers import (
    DATA,
    HEADER,
    JSON_LAYOUT,
    ROOT,
    LambdaContext,
    Response,
    Stack,
    api_gateway_event,
    sqs_event,
)
from transforms.errors import JobStoreError

WEBHOOK = "ci360-s3-connector-prod-webhook"
WORKER = "ci360-s3-connector-prod-worker"
TASK_ID = "8eb42f45-7991-48ae-a30a-8e033a88668d"  # devstack.localstack.webhook_payload's


def context(name: str) -> LambdaContext:
    ctx = LambdaContext()
    ctx.function_name = name  # type: ignore[misc]
    ctx.invoked_function_arn = f"arn:aws:lambda:us-east-1:123456789012:function:{name}"  # type: ignore[misc]
    return ctx


@dataclass
class Deployment:
    """The stack's queue and two tables on moto, a versioned target bucket, and both functions."""

    stack: Stack
    monkeypatch: pytest.MonkeyPatch
    queue_url: str
    jobs_table: str
    idempotency_table: str

    def webhook(self, payload: dict[str, Any]) -> Response:
        self.monkeypatch.setenv("AWS_LAMBDA_FUNCTION_NAME", WEBHOOK)
        raw = webhook.handle(api_gateway_event(payload), context(WEBHOOK))
        return Response(raw["statusCode"], json.loads(raw["body"]), raw)

    def worker(self, event: dict[str, Any]) -> None:
        self.monkeypatch.setenv("AWS_LAMBDA_FUNCTION_NAME", WORKER)
        worker.handle(event, context(WORKER))

    def sqs_event(self) -> dict[str, Any]:
        """The one queued job, as the SQS event Lambda builds (it stays queued: a redelivery is possible)."""
        return sqs_event(self.queue_url)

    def queued(self) -> int:
        attributes = boto3.client("sqs").get_queue_attributes(
            QueueUrl=self.queue_url, AttributeNames=["ApproximateNumberOfMessages"])["Attributes"]
        return int(attributes["ApproximateNumberOfMessages"])

    def versions(self, key: str) -> list[dict[str, Any]]:
        listing = self.stack.s3.list_object_versions(Bucket=self.stack.target, Prefix=key)
        return [v for v in listing.get("Versions", []) if v["Key"] == key]

    def record(self, occurrence_id: str) -> dict[str, Any] | None:
        raw = jobs_handler.handle({"pathParameters": {"occurrenceId": occurrence_id}}, context("jobs"))
        return json.loads(raw["body"]) if raw["statusCode"] == 200 else None

    def idempotency_ids(self) -> list[str]:
        items = boto3.client("dynamodb").scan(TableName=self.idempotency_table)["Items"]
        return [item["id"]["S"] for item in items]

    def payload(self, key: str, data_url: str | None = None, **params: str) -> dict[str, Any]:
        staged_data, metadata_url = self.stack.stage(DATA, JSON_LAYOUT)
        return webhook_payload(data_url or staged_data, metadata_url, key, **params)


@pytest.fixture
def deployment(stack: Stack, monkeypatch: pytest.MonkeyPatch) -> Deployment:
    suffix = uuid.uuid4().hex[:8]
    queue_url = create_job_stack(f"jobs-{suffix}", f"jobs-{suffix}", f"idempotency-{suffix}")
    stack.s3.put_bucket_versioning(Bucket=stack.target, VersioningConfiguration={"Status": "Enabled"})
    for name, value in (("jobs_queue", f"jobs-{suffix}"), ("jobs_table", f"jobs-{suffix}"),
                        ("idempotency_table", f"idempotency-{suffix}")):
        monkeypatch.setenv(name, value)
    for name in ("processing_mode", "sync_max_mb", "IS_LOCAL"):
        monkeypatch.delenv(name, raising=False)
    return Deployment(stack, monkeypatch, queue_url, f"jobs-{suffix}", f"idempotency-{suffix}")


def resend(payload: dict[str, Any], **params: str) -> dict[str, Any]:
    """The same webhook again (same occurrence, task and target), with some send parameters changed."""
    again = json.loads(json.dumps(payload))
    again["sendParameters"].update(params)
    return again


# -- one landing, whichever function lands it ------------------------------------------------------


@pytest.mark.parametrize("job_records", [True, False], ids=["job-records", "idempotency-only"])
@pytest.mark.parametrize("second_mode", ["sync", "async"])
def test_queued_then_landed_by_the_worker_then_sent_again_lands_once(
        deployment: Deployment, job_records: bool, second_mode: str) -> None:
    if not job_records:  # the idempotency key alone must hold across the two functions
        deployment.monkeypatch.setenv("jobs_table", "")
    payload = deployment.payload("once.csv", processing_mode="async")
    first = deployment.webhook(payload)
    assert first.status == 202, first.body
    deployment.worker(deployment.sqs_event())
    assert len(deployment.versions("once.csv")) == 1
    again = deployment.webhook(resend(payload, processing_mode=second_mode))
    assert again.status == 200, again.body
    assert again.body["key"] == "once.csv" and again.body["rows"] == 4
    (version,) = deployment.versions("once.csv")
    assert again.body["checksum"]["value"]  # the first landing's result, not a new one
    assert deployment.stack.landed("once.csv") == HEADER + DATA
    if job_records:
        assert deployment.record(payload["task"]["occurrenceId"])["status"] == "succeeded"
    assert version["IsLatest"]


def test_the_idempotency_key_is_ours_not_the_function_or_module_name(deployment: Deployment) -> None:
    """Same key in every function, deployment and code layout: prefix + md5 of the landing's identity."""
    payload = deployment.payload("keyed.csv", processing_mode="sync")
    assert deployment.webhook(payload).status == 200
    identity = {"occurrenceId": payload["task"]["occurrenceId"], "taskId": TASK_ID,
                "bucket": deployment.stack.target, "target": "keyed.csv"}
    digest = hashlib.md5(json.dumps(identity, sort_keys=True).encode()).hexdigest()  # noqa: S324 (Powertools')
    assert deployment.idempotency_ids() == [f"ci360-s3-connector#landing#{digest}"]


def _expiry_attribute(table: str) -> str:
    """The attribute DynamoDB's TTL deletes the deployed table's items by (serverless.yml), which the
    local stack's table declares too."""
    resources = yaml.safe_load((ROOT / "serverless.yml").read_text())["resources"]["Resources"]
    attribute = resources[table]["Properties"]["TimeToLiveSpecification"]["AttributeName"]
    return str(attribute)


@pytest.mark.parametrize("hours", [None, 1, 5], ids=["default-72", "1h", "5h"])
def test_idempotency_hours_is_when_the_idempotency_record_expires(deployment: Deployment,
                                                                  hours: int | None) -> None:
    """The record that answers a repeat expires ``idempotency_hours`` after the landing: its TTL
    attribute, read back from DynamoDB, is then (epoch seconds), and it is the attribute the table's
    TTL deletes items by."""
    if hours is not None:
        deployment.monkeypatch.setenv("idempotency_hours", str(hours))
    payload = deployment.payload("expiring.csv", processing_mode="sync")
    before = time.time()
    assert deployment.webhook(payload).status == 200
    after = time.time()
    attribute = _expiry_attribute("IdempotencyTable")
    dynamodb = boto3.client("dynamodb")
    ttl = dynamodb.describe_time_to_live(TableName=deployment.idempotency_table)["TimeToLiveDescription"]
    assert ttl["AttributeName"] == attribute and ttl["TimeToLiveStatus"] == "ENABLED"
    (item,) = dynamodb.scan(TableName=deployment.idempotency_table)["Items"]
    assert item["status"]["S"] == "COMPLETED"
    window = (hours or 72) * 3600
    assert int(before) + window <= int(item[attribute]["N"]) <= after + window, (item[attribute], before)


def _run(function: str, name: str, event: dict[str, Any], may_raise: str | None = None) -> Any:
    """One invocation in its own process under its own function name (tests/support/lambda_process.py);
    ``may_raise``: an exception the function may end with instead (None is returned then)."""
    completed = subprocess.run([sys.executable, "-m", "tests.support.lambda_process", function, name],
                               input=json.dumps(event), capture_output=True, text=True, cwd=ROOT,
                               env=dict(os.environ), timeout=120, check=False)
    if completed.returncode != 0 and may_raise and may_raise in completed.stderr.strip().splitlines()[-1]:
        return None
    assert completed.returncode == 0, completed.stderr[-3000:]
    return json.loads(completed.stdout.strip().splitlines()[-1])


def test_webhook_and_worker_at_the_same_time_land_once(deployment: Deployment, fault_server) -> None:
    """The worker lands a queued job while the same webhook, sent again in sync mode, tries to: two
    functions, two processes, one slow source so that they overlap. No job records: only the shared
    idempotency key stands between them."""
    deployment.monkeypatch.setenv("jobs_table", "")
    slow = fault_server.url("/slow-data", Script(200, DATA, delay=1.5))
    payload = deployment.payload("together.csv", data_url=slow, processing_mode="async")
    assert deployment.webhook(payload).status == 202
    event = deployment.sqs_event()
    again = api_gateway_event(resend(payload, processing_mode="sync"))
    with ThreadPoolExecutor(2) as pool:
        # The worker may find the webhook landing it: it raises, and SQS delivers the message again.
        landing = pool.submit(_run, "worker", WORKER, event, "AlreadyRunning")
        answer = pool.submit(_run, "webhook", WEBHOOK, again)
        landing.result()
        response = answer.result()
    assert response["statusCode"] in (200, 202), response
    deployment.worker(event)  # the redelivery (or a duplicate one): the first landing's result
    assert len(deployment.versions("together.csv")) == 1
    assert deployment.stack.landed("together.csv") == HEADER + DATA


def test_the_same_webhook_twice_at_once_lands_once(deployment: Deployment, fault_server) -> None:
    slow = fault_server.url("/slow-twice", Script(200, DATA, delay=1.5))
    payload = deployment.payload("twice-at-once.csv", data_url=slow, processing_mode="sync")
    event = api_gateway_event(payload)
    with ThreadPoolExecutor(2) as pool:
        answers = [pool.submit(_run, "webhook", name, event) for name in (WEBHOOK, WEBHOOK + "-2")]
        statuses = sorted(a.result()["statusCode"] for a in answers)
    assert statuses in ([200, 200], [200, 202]), statuses
    assert len(deployment.versions("twice-at-once.csv")) == 1
    assert deployment.record(payload["task"]["occurrenceId"])["status"] == "succeeded"


# -- the first answer to every repeat --------------------------------------------------------------


def test_repeat_with_overwrite_false_gets_the_first_answer_not_409(deployment: Deployment) -> None:
    payload = deployment.payload("kept.csv", processing_mode="async", overwrite="false")
    first = deployment.webhook(payload)
    assert first.status == 202
    queued = deployment.webhook(payload)  # before the worker ran: the same 202
    assert queued.status == 202 and queued.body["jobId"] == first.body["jobId"], queued.body
    assert queued.body["status"] == "accepted"
    assert deployment.queued() == 1  # not queued twice
    deployment.worker(deployment.sqs_event())
    for mode in ("async", "sync", "auto"):
        landed = deployment.webhook(resend(payload, processing_mode=mode))
        assert landed.status == 200, (mode, landed.body)
        assert landed.body["key"] == "kept.csv" and landed.body["rows"] == 4
    assert len(deployment.versions("kept.csv")) == 1


def test_a_new_job_onto_an_existing_key_is_still_409(deployment: Deployment) -> None:
    deployment.stack.s3.put_object(Bucket=deployment.stack.target, Key="taken.csv", Body=b"theirs")
    for mode in ("sync", "async"):
        payload = deployment.payload("taken.csv", processing_mode=mode, overwrite="false")
        response = deployment.webhook(payload)
        assert response.status == 409 and response.body["error"]["code"] == "CONFLICT", (mode, response.body)
    assert deployment.stack.landed("taken.csv") == b"theirs"
    assert deployment.queued() == 0


def test_a_duplicate_delivery_after_success_leaves_the_record_alone(deployment: Deployment) -> None:
    payload = deployment.payload("delivered.csv", processing_mode="async")
    assert deployment.webhook(payload).status == 202
    event = deployment.sqs_event()
    deployment.worker(event)
    before = deployment.record(payload["task"]["occurrenceId"])
    assert before["status"] == "succeeded"
    # Even with the idempotency table gone, a redelivery must not flip the record to running or failed.
    boto3.client("dynamodb").delete_table(TableName=deployment.idempotency_table)
    deployment.worker(event)
    assert deployment.record(payload["task"]["occurrenceId"]) == before
    assert len(deployment.versions("delivered.csv")) == 1


# -- either store failing: one retryable error, nothing partial ------------------------------------


def _assert_store_error(response: Response, table: str, code: str) -> None:
    assert response.status == 502, response.body
    error = response.body["error"]
    assert error["code"] == "JOB_STORE_ERROR"
    assert error["details"][0]["table"] == table and error["details"][0]["dynamodbErrorCode"] == code
    assert table in error["message"] and code in error["message"]


@pytest.mark.parametrize("mode", ["sync", "async"])
def test_missing_idempotency_table_is_a_502_naming_it(deployment: Deployment, mode: str) -> None:
    deployment.monkeypatch.setenv("idempotency_table", "no-such-table")
    response = deployment.webhook(deployment.payload("guarded.csv", processing_mode=mode))
    _assert_store_error(response, "idempotency", "ResourceNotFoundException")
    assert deployment.stack.target_keys() == [] and deployment.stack.pending_uploads() == []
    assert deployment.queued() == 0


def test_missing_idempotency_table_in_the_worker_is_retried_and_recorded(deployment: Deployment) -> None:
    payload = deployment.payload("retried.csv", processing_mode="async")
    assert deployment.webhook(payload).status == 202
    deployment.monkeypatch.setenv("idempotency_table", "no-such-table")
    with pytest.raises(JobStoreError, match="ResourceNotFoundException"):  # raised: SQS delivers it again
        deployment.worker(deployment.sqs_event())
    record = deployment.record(payload["task"]["occurrenceId"])
    assert record["status"] != "succeeded"
    assert deployment.stack.target_keys() == [] and deployment.stack.pending_uploads() == []


@pytest.fixture
def throttling(moto_server, monkeypatch: pytest.MonkeyPatch) -> Iterator[DynamoDBProxy]:
    proxy = DynamoDBProxy(moto_server.endpoint)
    monkeypatch.setenv("AWS_ENDPOINT_URL_DYNAMODB", proxy.endpoint)
    runtime.aws_client.cache_clear()  # the functions' clients are built once per container
    yield proxy
    runtime.aws_client.cache_clear()
    proxy.stop()


@pytest.mark.parametrize("mode", ["sync", "async"])
def test_throttled_jobs_table_is_a_502_naming_it(deployment: Deployment, throttling: DynamoDBProxy,
                                                 mode: str) -> None:
    throttling.rule = lambda operation, body: body.get("TableName") == deployment.jobs_table
    response = deployment.webhook(deployment.payload("throttled.csv", processing_mode=mode))
    _assert_store_error(response, "jobs", THROTTLED)
    assert throttling.throttled
    assert deployment.stack.target_keys() == [] and deployment.stack.pending_uploads() == []
    assert deployment.queued() == 0


@pytest.mark.parametrize("error", [THROTTLED, "AccessDeniedException"])
def test_a_failing_idempotency_table_is_the_same_502(deployment: Deployment, throttling: DynamoDBProxy,
                                                     error: str) -> None:
    throttling.error = error
    throttling.rule = lambda operation, body: body.get("TableName") == deployment.idempotency_table
    response = deployment.webhook(deployment.payload("throttled2.csv", processing_mode="sync"))
    _assert_store_error(response, "idempotency", error)
    assert deployment.stack.target_keys() == [] and deployment.stack.pending_uploads() == []


def test_a_landing_whose_job_record_cannot_be_updated_is_not_lost(deployment: Deployment,
                                                                   throttling: DynamoDBProxy) -> None:
    """The object landed but the jobs table refuses "succeeded": a retryable 502, and the retry answers
    with that landing (from the idempotency record) and writes it back to the job record."""
    def marks_succeeded(operation: str, body: dict[str, Any]) -> bool:
        values = body.get("ExpressionAttributeValues", {})
        return (body.get("TableName") == deployment.jobs_table and operation == "UpdateItem"
                and {"S": "succeeded"} in [v for k, v in values.items() if k != ":succeeded"])

    throttling.rule = marks_succeeded
    payload = deployment.payload("recorded.csv", processing_mode="sync")
    first = deployment.webhook(payload)
    _assert_store_error(first, "jobs", THROTTLED)
    assert len(deployment.versions("recorded.csv")) == 1
    throttling.rule = lambda operation, body: False
    again = deployment.webhook(payload)
    assert again.status == 200 and again.body["key"] == "recorded.csv", again.body
    assert len(deployment.versions("recorded.csv")) == 1
    record = deployment.record(payload["task"]["occurrenceId"])
    assert record["status"] == "succeeded" and record["result"]["checksum"] == again.body["checksum"]


def test_a_succeeded_record_is_never_reopened_even_by_a_racing_duplicate(deployment: Deployment) -> None:
    """The store's own guarantee (a conditional write), for a duplicate that read the record just before
    the first delivery finished: marking it running or failed afterwards changes nothing."""
    from transforms.errors import SourceError
    from transforms.jobs.dispatch import job_from_message
    from transforms.jobs.store import JobStore

    payload = deployment.payload("raced.csv", processing_mode="async")
    assert deployment.webhook(payload).status == 202
    event = deployment.sqs_event()
    deployment.worker(event)
    occurrence_id = payload["task"]["occurrenceId"]
    before = deployment.record(occurrence_id)
    store = JobStore(boto3.client("dynamodb"), deployment.jobs_table)
    job = job_from_message(event["Records"][0]["body"])
    assert store.running(job, "async") == before  # the succeeded record, untouched
    store.failed(job, SourceError("expired", "data", 403))
    assert deployment.record(occurrence_id) == before


def test_a_job_that_could_not_be_queued_is_recorded_failed_not_accepted(deployment: Deployment) -> None:
    """A queue that cannot be found fails the call retryably, and its job record says so: a repeat runs
    again rather than being told 202 "accepted" for a job nothing will ever land."""
    deployment.monkeypatch.setenv("jobs_queue", "no-such-queue")
    payload = deployment.payload("unqueued.csv", processing_mode="async")
    for _ in range(2):
        response = deployment.webhook(payload)
        assert response.status == 502 and response.body["error"]["code"] == "QUEUE_ERROR", response.body
    record = deployment.record(payload["task"]["occurrenceId"])
    assert record["status"] == "failed" and record["error"]["code"] == "QUEUE_ERROR"
    assert deployment.stack.target_keys() == []
