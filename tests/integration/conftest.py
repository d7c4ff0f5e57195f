"""The servers integration tests talk to, each in its own process on 127.0.0.1: one moto server per
session (S3, SQS, DynamoDB, Glue, KMS) that every test here reaches through the standard AWS variables,
one SeaweedFS started when a test first asks for it; fresh buckets, queue and tables per test."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import boto3
import pytest

from devstack.ci360_gateway import FakeCI360Gateway
from devstack.localstack import (
    MotoServer,
    SeaweedServer,
    ServerUnavailable,
    create_job_stack,
    route_outcome_events,
    s3_client,
    unique_bucket,
)
from tests.support.helpers import AsyncStack, Stack
from tests.support.outcomes import SECRET, TENANT, Bus


@pytest.fixture(scope="session")
def moto_server() -> Iterator[MotoServer]:
    server = MotoServer.start()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def seaweed_server() -> Iterator[SeaweedServer]:
    """A second, independent S3 implementation (tests/integration/second_s3/test_second_s3.py). Skipped
    only where its binary cannot run; a binary that runs but does not start is a failure."""
    try:
        server = SeaweedServer.start()
    except ServerUnavailable as exc:
        pytest.skip(f"SeaweedFS unavailable: {exc}")
    yield server
    server.stop()


@pytest.fixture(autouse=True)
def aws_environment(moto_server: MotoServer, monkeypatch: pytest.MonkeyPatch) -> None:
    """Every integration test talks to the local server through the standard boto3 variables only."""
    for name, value in moto_server.environ().items():
        monkeypatch.setenv(name, value)


@pytest.fixture
def s3(aws_environment: None) -> Any:
    return s3_client()


@pytest.fixture
def stack(s3: Any, monkeypatch: pytest.MonkeyPatch) -> Stack:
    staging, target = unique_bucket("ci360-staging"), unique_bucket("target")
    s3.create_bucket(Bucket=staging)
    s3.create_bucket(Bucket=target)
    monkeypatch.setenv("s3_bucket_name", target)
    return Stack(s3, staging, target)


@pytest.fixture
def async_stack(stack: Stack, monkeypatch: pytest.MonkeyPatch) -> AsyncStack:
    """The stack's job queue and two tables on moto, named in the environment as serverless.yml names
    them, and a versioned target bucket."""
    suffix = uuid.uuid4().hex[:8]
    queue_url = create_job_stack(f"jobs-{suffix}", f"jobs-{suffix}", f"idempotency-{suffix}")
    stack.s3.put_bucket_versioning(Bucket=stack.target, VersioningConfiguration={"Status": "Enabled"})
    monkeypatch.setenv("jobs_queue", f"jobs-{suffix}")  # by name, as serverless.yml sets it
    monkeypatch.setenv("jobs_table", f"jobs-{suffix}")
    monkeypatch.setenv("idempotency_table", f"idempotency-{suffix}")
    return AsyncStack(stack, queue_url, f"jobs-{suffix}")


@pytest.fixture
def glue(aws_environment: None) -> Any:
    """moto's Glue, over HTTP."""
    return boto3.client("glue")


@pytest.fixture
def database(glue: Any) -> str:
    """A fresh Glue database of its own, for registering tables directly."""
    name = f"db_{uuid.uuid4().hex[:10]}"
    glue.create_database(DatabaseInput={"Name": name})
    return name


@pytest.fixture
def glue_database(stack: Stack, monkeypatch: pytest.MonkeyPatch) -> str:
    """A Glue database named after the target bucket, set as the function's ``glue_database``."""
    name = stack.target.replace("-", "_")
    boto3.client("glue").create_database(DatabaseInput={"Name": name})
    monkeypatch.setenv("glue_database", name)
    return name


@pytest.fixture
def gateway() -> Iterator[FakeCI360Gateway]:
    """The fake CI360 gateway on 127.0.0.1: verifies each event's JWT and records what it received."""
    with FakeCI360Gateway(TENANT, SECRET) as fake:
        yield fake


@pytest.fixture
def bus(aws_environment: None) -> Bus:
    name = f"ci360-{uuid.uuid4().hex[:10]}"
    return Bus(name, route_outcome_events(name))


@pytest.fixture
def outcomes(gateway: FakeCI360Gateway, bus: Bus, monkeypatch: pytest.MonkeyPatch) -> None:
    """The function told to report to the fake gateway (its address, as the access point shows it) and
    to the test's bus."""
    monkeypatch.setenv("IS_LOCAL", "true")
    monkeypatch.setenv("ci360_events_url", gateway.url)
    monkeypatch.setenv("ci360_tenant_id", TENANT)
    monkeypatch.setenv("ci360_client_secret", SECRET)
    monkeypatch.setenv("event_bus_name", bus.name)
    monkeypatch.setenv("ci360_events_timeout_s", "3")
