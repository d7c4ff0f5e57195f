"""Shared fixtures: one moto server per session (and one SeaweedFS, started when a test first asks for
it), fresh buckets per test, a Lambda-like invoker."""

from __future__ import annotations

import io
import json
import sys
import threading
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import boto3
import pytest

from devstack.localstack import (
    MotoServer,
    SeaweedServer,
    ServerUnavailable,
    create_job_stack,
    object_keys,
    pending_uploads,
    s3_client,
    stage,
    unique_bucket,
)
from tests.support.helpers import AsyncStack


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
    """Every test talks to the local server through the standard boto3 variables only."""
    for name, value in moto_server.environ().items():
        monkeypatch.setenv(name, value)
    for name in ("csv_header", "result_url_ttl", "part_size_mb", "upload_concurrency", "gzip_level",
                 "s3_key_prefix", "key_template", "overwrite", "encryption"):
        monkeypatch.delenv(name, raising=False)
    # moto's server and the fault server both listen on loopback, as the local stack does.
    monkeypatch.setenv("source_host_allowlist", "http://127.0.0.1:*")


@pytest.fixture
def s3(aws_environment: None) -> Any:
    return s3_client()


@dataclass
class Stack:
    """A staging bucket (CI360's side) and a target bucket (the customer's), both fresh."""

    s3: Any
    staging: str
    target: str

    def stage(self, data: bytes, metadata: bytes) -> tuple[str, str]:
        return stage(self.s3, self.staging, data, metadata)

    def landed(self, key: str) -> bytes:
        return self.s3.get_object(Bucket=self.target, Key=key)["Body"].read()

    def target_keys(self) -> list[str]:
        return object_keys(self.s3, self.target)

    def pending_uploads(self) -> list[dict[str, Any]]:
        return pending_uploads(self.s3, self.target)


@pytest.fixture
def stack(s3: Any, monkeypatch: pytest.MonkeyPatch) -> Stack:
    staging, target = unique_bucket("ci360-staging"), unique_bucket("target")
    s3.create_bucket(Bucket=staging)
    s3.create_bucket(Bucket=target)
    monkeypatch.setenv("s3_bucket_name", target)
    return Stack(s3, staging, target)


class LambdaContext:
    """The attributes the Lambda runtime's context offers and the handler (via Powertools) reads."""

    function_name = "ci360-s3-connector-test-webhook"
    function_version = "$LATEST"
    memory_limit_in_mb = 1024
    invoked_function_arn = "arn:aws:lambda:us-east-1:123456789012:function:ci360-s3-connector-test-webhook"

    def __init__(self) -> None:
        self.aws_request_id = str(uuid.uuid4())

    def get_remaining_time_in_millis(self) -> int:
        return 29_000


def api_gateway_event(payload: Any, *, base64_body: bool = False,
                      raw_body: str | None = None) -> dict[str, Any]:
    """A REST API (Lambda proxy) event for POST /upload with the given body."""
    import base64

    body = raw_body if raw_body is not None else json.dumps(payload)
    if base64_body:
        body = base64.b64encode(body.encode("utf-8")).decode("ascii")
    return {
        "resource": "/upload",
        "path": "/upload",
        "httpMethod": "POST",
        "headers": {"Content-Type": "application/json", "x-api-key": "test-api-key"},
        "requestContext": {"requestId": str(uuid.uuid4()), "stage": "test"},
        "body": body,
        "isBase64Encoded": base64_body,
    }


@dataclass
class Response:
    status: int
    body: dict[str, Any]
    raw: dict[str, Any]


def invoke(event: dict[str, Any]) -> Response:
    from handler.webhook import handle

    raw = handle(event, LambdaContext())
    assert raw["headers"]["Content-Type"] == "application/json"
    return Response(raw["statusCode"], json.loads(raw["body"]), raw)


class DiskWriteAudit:
    """Records every open-for-writing in this process while armed (audit hooks cannot be removed)."""

    _installed = False
    _armed = threading.Event()
    writes: list[str] = []

    @classmethod
    def install(cls) -> None:
        if not cls._installed:
            sys.addaudithook(cls._hook)
            cls._installed = True

    @classmethod
    def _hook(cls, event: str, args: tuple[Any, ...]) -> None:
        if not cls._armed.is_set() or event != "open":
            return
        path, mode, flags = (tuple(args) + (None, None, None))[:3]
        import os

        writing = (isinstance(mode, str) and any(c in mode for c in "wax+")) or (
            isinstance(flags, int) and flags & (os.O_WRONLY | os.O_RDWR | os.O_CREAT)
        )
        if writing:
            cls.writes.append(str(path))


@pytest.fixture
def disk_audit() -> Iterator[type[DiskWriteAudit]]:
    DiskWriteAudit.install()
    DiskWriteAudit.writes.clear()
    DiskWriteAudit._armed.set()
    try:
        yield DiskWriteAudit
    finally:
        DiskWriteAudit._armed.clear()


@pytest.fixture
def refusing_port() -> Iterator[int]:
    """A port on 127.0.0.1 that refuses connections (held bound, not listening) for the test's length."""
    from devstack.localstack import closed_port

    with closed_port() as sock:
        yield sock.getsockname()[1]


@pytest.fixture
def fault_server() -> Iterator[Any]:
    from tests.support.faultserver import FaultServer

    server = FaultServer()
    yield server
    server.stop()


@pytest.fixture
def lambda_logs() -> Iterator[io.StringIO]:
    """What the function prints to CloudWatch: the Powertools handler's stream, formatter included."""
    from handler.runtime import logger

    buffer = io.StringIO()
    handler = logger.registered_handler
    previous, handler.stream = handler.stream, buffer  # not setStream: it flushes a stream pytest closed
    try:
        yield buffer
    finally:
        handler.stream = previous


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
