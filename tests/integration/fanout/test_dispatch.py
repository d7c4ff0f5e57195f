"""The webhook's side of a fan-out, against moto's Step Functions, SQS, DynamoDB and S3: when a job fans
out, what the execution starts with, its name, and every repeat starting nothing."""

from __future__ import annotations

import json
import uuid
from typing import Any

import boto3
import pytest
from aws_lambda_powertools.utilities.idempotency import DynamoDBPersistenceLayer, IdempotencyConfig

from devstack.localstack import webhook_payload
from tests.support.helpers import DATA, JSON_LAYOUT, AsyncStack, api_gateway_event, get_job, invoke
from transforms.ci360.payload import parse_job
from transforms.errors import OrchestrationError
from transforms.jobs.dispatch import execution_name
from transforms.jobs.landing import KEY_PREFIX, landing_identity
from transforms.jobs.store import JobStore
from transforms.settings import Settings

ARN_SETTING = "fanout_state_machine"
MIB = 1024 * 1024
BIG = DATA * (2 * MIB // len(DATA) + 1)  # over 2 MiB


@pytest.fixture
def machine(async_stack: AsyncStack, monkeypatch: pytest.MonkeyPatch) -> str:
    definition = json.dumps({"StartAt": "S", "States": {"S": {"Type": "Succeed"}}})  # moto runs nothing
    arn = boto3.client("stepfunctions").create_state_machine(
        name=f"fanout-{uuid.uuid4().hex[:8]}", definition=definition,
        roleArn="arn:aws:iam::123456789012:role/fanout")["stateMachineArn"]
    monkeypatch.setenv(ARN_SETTING, arn)
    monkeypatch.setenv("fanout_min_mb", "2")
    return arn


def executions(arn: str) -> list[dict[str, Any]]:
    return boto3.client("stepfunctions").list_executions(stateMachineArn=arn)["executions"]


def webhook(stack: AsyncStack, data: bytes, key: str, **params: str) -> tuple[dict[str, Any], Any]:
    data_url, metadata_url = stack.stack.stage(data, JSON_LAYOUT)
    payload = webhook_payload(data_url, metadata_url, key, **params)
    return payload, invoke(api_gateway_event(payload))


def test_a_file_of_at_least_fanout_min_mb_starts_an_execution_without_its_presigned_urls(
        async_stack: AsyncStack, machine: str) -> None:
    payload, response = webhook(async_stack, BIG, "big/audience.csv")
    assert response.status == 202 and response.body["mode"] == "fanout", response.body
    (execution,) = executions(machine)
    described = boto3.client("stepfunctions").describe_execution(executionArn=execution["executionArn"])
    job = json.loads(described["input"])["job"]
    assert job["occurrenceId"] == payload["task"]["occurrenceId"] and job["key"] == "big/audience.csv"
    assert "X-Amz-Signature" not in described["input"] and "http" not in described["input"]
    # The job itself waits in the staging folder for the steps, beside the key.
    assert async_stack.stack.target_keys() == [job["jobObject"]]
    assert job["jobObject"].startswith("big/_ci360-fanout-")
    assert async_stack.queued() == []
    record = get_job(payload["task"]["occurrenceId"])[1]
    assert (record["status"], record["mode"]) == ("accepted", "fanout")


def test_the_execution_is_named_after_the_landing_key_the_idempotency_layer_uses(
        async_stack: AsyncStack, machine: str) -> None:
    payload, _ = webhook(async_stack, BIG, "named.csv")
    job = parse_job(payload, Settings.from_env())
    persistence = DynamoDBPersistenceLayer("unused", boto3_client=boto3.client("dynamodb"))
    persistence.configure(IdempotencyConfig(), key_prefix=KEY_PREFIX)
    key = persistence._get_hashed_idempotency_key(landing_identity(job))
    assert key == f"{KEY_PREFIX}#{execution_name(job, 1)[:-2]}"
    assert [e["name"] for e in executions(machine)] == [execution_name(job, 1)]


@pytest.mark.parametrize(("settings", "params", "mode"), [
    ({"fanout_min_mb": "0"}, {}, "async"),  # 0: fan-out off
    ({"fanout_min_mb": "3"}, {}, "async"),  # below the threshold: the worker
    ({}, {"processing_mode": "async"}, "fanout"),  # asked for async: still too large for one function
])
def test_when_a_job_fans_out(async_stack: AsyncStack, machine: str, monkeypatch: pytest.MonkeyPatch,
                             settings: dict[str, str], params: dict[str, str], mode: str) -> None:
    monkeypatch.setenv("sync_max_mb", "1")  # what does not fan out is queued, not landed inline
    for name, value in settings.items():
        monkeypatch.setenv(name, value)
    _, response = webhook(async_stack, BIG, "when.csv", **params)
    assert (response.status, response.body["mode"]) == (202, mode)
    assert len(executions(machine)) == (mode == "fanout")
    assert len(async_stack.queued()) == (mode == "async")


def test_a_job_that_failed_runs_again_under_the_next_name(async_stack: AsyncStack, machine: str) -> None:
    payload, first = webhook(async_stack, BIG, "again.csv")
    job = parse_job(payload, Settings.from_env())
    (execution,) = executions(machine)
    boto3.client("stepfunctions").stop_execution(executionArn=execution["executionArn"])  # it ended
    JobStore(boto3.client("dynamodb"), async_stack.jobs_table).failed(job, OrchestrationError("x", "y"))
    again = invoke(api_gateway_event(payload))
    assert (first.status, again.status) == (202, 202) and again.body["status"] == "accepted"
    assert sorted(e["name"] for e in executions(machine)) == [execution_name(job, 1), execution_name(job, 2)]


def test_a_repeat_that_finds_its_execution_running_starts_nothing(async_stack: AsyncStack,
                                                                  machine: str) -> None:
    """Two deliveries racing past the job record: Step Functions refuses the second start of that name."""
    payload, first = webhook(async_stack, BIG, "race.csv")
    boto3.client("dynamodb").delete_item(TableName=async_stack.jobs_table,
                                         Key={"occurrence_id": {"S": payload["task"]["occurrenceId"]}})
    again = invoke(api_gateway_event(payload))
    assert (first.status, again.status) == (202, 202)
    assert len(executions(machine)) == 1


def test_a_fanout_that_cannot_start_is_a_502_and_leaves_nothing(async_stack: AsyncStack, machine: str,
                                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(ARN_SETTING, machine.replace(":stateMachine:fanout-", ":stateMachine:missing-"))
    payload, response = webhook(async_stack, BIG, "nostart.csv")
    assert response.status == 502 and response.body["error"]["code"] == "STEP_FUNCTIONS_ERROR", response.body
    assert response.body["error"]["details"] == [{"stepFunctionsErrorCode": "StateMachineDoesNotExist"}]
    assert async_stack.stack.target_keys() == []  # the stored job (with its URLs) is gone
    record = get_job(payload["task"]["occurrenceId"])[1]
    assert record["status"] == "failed" and record["error"]["code"] == "STEP_FUNCTIONS_ERROR"


def test_a_state_machine_named_by_name_as_deployed_is_found_by_its_arn(
        async_stack: AsyncStack, machine: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """serverless.yml gives the functions the name (it resolves offline); the ARN holds the account."""
    monkeypatch.setenv(ARN_SETTING, machine.rsplit(":", 1)[1])
    _, response = webhook(async_stack, BIG, "by-name.csv")
    assert response.status == 202 and response.body["mode"] == "fanout", response.body
    assert len(executions(machine)) == 1
