"""Exactly once across the webhook and the worker, and the first answer to every repeat.

The webhook and the worker run as the two functions of a deployment: each under its own
AWS_LAMBDA_FUNCTION_NAME and Lambda context, and in processes of their own where they overlap. S3
(versioned, so a second landing shows as a second version), SQS and DynamoDB are moto's server over
HTTP; DynamoDB's throttling comes from a proxy in front of it (tests/support/dynamodb_proxy.py), and so
does the proof that two processes raced for one landing's guard (GuardRace): no concurrency test here
depends on timing.
"""

from __future__ import annotations

import functools
import hashlib
import json
import os
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator
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


@dataclass
class Invocation:
    """How one function's process ended: its return value as JSON, or the exception it raised."""

    answer: Any = None
    raised: str | None = None  # the exception's class name, when the function raised


def _run(function: str, name: str, event: dict[str, Any], dynamodb_endpoint: str) -> Invocation:
    """One invocation in its own process under its own function name (tests/support/lambda_process.py),
    reaching DynamoDB through ``dynamodb_endpoint``."""
    environment = {**os.environ, "AWS_ENDPOINT_URL_DYNAMODB": dynamodb_endpoint}
    completed = subprocess.run([sys.executable, "-m", "tests.support.lambda_process", function, name],
                               input=json.dumps(event), capture_output=True, text=True, cwd=ROOT,
                               env=environment, timeout=180, check=False)
    if completed.returncode != 0:
        last = completed.stderr.strip().splitlines()[-1]
        assert ":" in last, completed.stderr[-3000:]
        return Invocation(raised=last.split(":", 1)[0].rpartition(".")[2])
    return Invocation(answer=json.loads(completed.stdout.strip().splitlines()[-1]))


class GuardRace:
    """Two processes landing the same job, made to meet at its exactly-once guard.

    Each process reaches DynamoDB through a proxy of its own (so each request is known by its sender).
    The guard is Powertools' conditional PutItem of the landing's "in progress" record on the
    idempotency table: the first process's is held until the second's has arrived too, so both have
    read no record and both ask for the guard at once (the race itself). Then ``first``'s is forwarded,
    and ``second``'s only once moto has answered it: ``first`` holds the guard, ``second`` must be
    refused. ``first``'s UpdateItem that records its success (the end of the guarded landing) is held
    until the test says ``second`` has answered, so ``second`` was refused while ``first`` was still
    inside the landing. Every wait is bounded (WAIT_S); one that runs out is recorded in ``timeouts``.
    """

    WAIT_S = 60.0

    def __init__(self, upstream: str, table: str, first: str, second: str) -> None:
        self.table, self.first, self.second = table, first, second
        self.proxies = {name: DynamoDBProxy(upstream) for name in (first, second)}
        self.guard_keys: dict[str, str] = {}  # who asked for the guard, and for which key
        self.answers: dict[str, tuple[int, str]] = {}  # the guard's answer to each: status, error type
        self.success_recorded: list[str] = []  # whose success record was forwarded
        self.timeouts: list[str] = []
        self.second_answered = threading.Event()  # set by the test once ``second``'s process has ended
        self._lock = threading.Lock()
        self._both_at_guard = threading.Event()
        self._first_holds_guard = threading.Event()
        for name, proxy in self.proxies.items():
            proxy.before = functools.partial(self._before, name)
            proxy.after = functools.partial(self._after, name)

    def endpoint(self, name: str) -> str:
        return self.proxies[name].endpoint

    def _wait(self, event: threading.Event, what: str) -> None:
        if not event.wait(self.WAIT_S):
            self.timeouts.append(what)

    def _before(self, name: str, operation: str, body: dict[str, Any]) -> None:
        if body.get("TableName") != self.table:
            return
        if operation == "PutItem":
            with self._lock:
                self.guard_keys[name] = body["Item"]["id"]["S"]
                if len(self.guard_keys) == 2:
                    self._both_at_guard.set()
            self._wait(self._both_at_guard, f"both at the guard (only {sorted(self.guard_keys)} came)")
            if name == self.second:
                self._wait(self._first_holds_guard, f"{self.first} given the guard")
        elif operation == "UpdateItem" and name == self.first:
            self._wait(self.second_answered, f"{self.second}'s answer")
            self.success_recorded.append(name)
        elif operation == "UpdateItem":
            self.success_recorded.append(name)

    def _after(self, name: str, operation: str, body: dict[str, Any], status: int, answer: bytes) -> None:
        if body.get("TableName") == self.table and operation == "PutItem":
            error = json.loads(answer or b"{}").get("__type", "").rpartition("#")[2] if status != 200 else ""
            self.answers[name] = (status, error)
            if name == self.first:
                self._first_holds_guard.set()

    def run(self, functions: dict[str, tuple[str, dict[str, Any]]]) -> dict[str, Invocation]:
        """Run both processes (name: (function, event)) at once; how each ended."""
        with ThreadPoolExecutor(2) as pool:
            running = {name: pool.submit(_run, function, name, event, self.endpoint(name))
                       for name, (function, event) in functions.items()}
            try:
                ended = {self.second: running[self.second].result()}
            finally:
                self.second_answered.set()
            ended[self.first] = running[self.first].result()
        return ended

    def assert_raced(self) -> None:
        """Both asked for the same guard at once; the first got it and the second was refused while the
        first was still landing; the first then recorded its success."""
        assert self.timeouts == []
        assert set(self.guard_keys) == {self.first, self.second}
        assert self.guard_keys[self.first] == self.guard_keys[self.second]
        assert self.answers == {self.first: (200, ""), self.second: (400, "ConditionalCheckFailedException")}
        assert self.success_recorded == [self.first]

    def stop(self) -> None:
        for event in (self._both_at_guard, self._first_holds_guard, self.second_answered):
            event.set()
        for proxy in self.proxies.values():
            proxy.stop()


@pytest.fixture
def guard_race(deployment: Deployment, moto_server) -> Iterator[Callable[[str, str], GuardRace]]:
    races: list[GuardRace] = []

    def race(first: str, second: str) -> GuardRace:
        races.append(GuardRace(moto_server.endpoint, deployment.idempotency_table, first, second))
        return races[-1]

    yield race
    for started in races:
        started.stop()


@pytest.mark.parametrize("first", [WORKER, WEBHOOK], ids=["worker-first", "webhook-first"])
def test_webhook_and_worker_at_the_same_time_land_once(deployment: Deployment, guard_race,
                                                       first: str) -> None:
    """The worker lands a queued job while the same webhook, sent again in sync mode, tries to: two
    functions, two processes, both past the lookup with nothing recorded and asking for the guard at
    once (GuardRace). No job records: only the shared idempotency key stands between them. The one
    given the guard lands; the other, refused while it lands, answers 202 "running" (the webhook) or
    raises AlreadyRunning (the worker: SQS delivers the message again, and that redelivery gets the
    landing's result). Each order is a test of its own: the outcome is decided, not left to timing."""
    deployment.monkeypatch.setenv("jobs_table", "")
    payload = deployment.payload("together.csv", processing_mode="async")
    assert deployment.webhook(payload).status == 202
    event = deployment.sqs_event()
    again = api_gateway_event(resend(payload, processing_mode="sync"))
    race = guard_race(first, WEBHOOK if first == WORKER else WORKER)
    ended = race.run({WORKER: ("worker", event), WEBHOOK: ("webhook", again)})
    race.assert_raced()
    webhook_answer = ended[WEBHOOK].answer
    if first == WORKER:
        assert ended[WORKER] == Invocation(answer=None)  # landed (the worker returns nothing)
        assert webhook_answer["statusCode"] == 202, webhook_answer
        assert json.loads(webhook_answer["body"])["status"] == "running"
    else:
        assert ended[WORKER] == Invocation(raised="AlreadyRunning")  # SQS will deliver it again
        assert webhook_answer["statusCode"] == 200, webhook_answer
        body = json.loads(webhook_answer["body"])
        assert (body["key"], body["rows"]) == ("together.csv", 4)
    deployment.worker(event)  # the redelivery: the first landing's result, nothing landed again
    assert len(deployment.versions("together.csv")) == 1
    assert deployment.stack.landed("together.csv") == HEADER + DATA
    landed = deployment.webhook(payload)  # and any repeat is answered with that landing
    assert landed.status == 200 and landed.body["rows"] == 4, landed.body
    assert len(deployment.versions("together.csv")) == 1


def test_the_same_webhook_twice_at_once_lands_once(deployment: Deployment, guard_race) -> None:
    """CI360 delivers the same webhook twice at once to two webhook instances, job records kept: both
    mark the job running and ask for the guard at once (GuardRace). The first lands and answers 200; the
    second, refused while it lands, answers 202 "running"; the job record ends "succeeded"."""
    payload = deployment.payload("twice-at-once.csv", processing_mode="sync")
    event = api_gateway_event(payload)
    second = WEBHOOK + "-2"
    race = guard_race(WEBHOOK, second)
    ended = race.run({WEBHOOK: ("webhook", event), second: ("webhook", event)})
    race.assert_raced()
    landed, refused = ended[WEBHOOK].answer, ended[second].answer
    assert landed["statusCode"] == 200 and json.loads(landed["body"])["rows"] == 4, landed
    assert refused["statusCode"] == 202 and json.loads(refused["body"])["status"] == "running", refused
    assert len(deployment.versions("twice-at-once.csv")) == 1
    assert deployment.stack.landed("twice-at-once.csv") == HEADER + DATA
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
