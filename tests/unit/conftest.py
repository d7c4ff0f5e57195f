"""Unit tests start no server and reach none: no moto, no SeaweedFS, no node, no process at all. A
server a unit test runs itself in this process on 127.0.0.1 (the fault server) is the one exception.

Every unit test gets AWS variables that lead nowhere: local fake credentials (so that botocore never
asks an instance metadata service for any) and an endpoint on 127.0.0.1 that refuses connections,
tried once. A unit test that calls AWS by accident fails at once with a connection error, and the
guard (tests/support/guard.py) fails one that starts a process or connects to a server it does not run.
"""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

from devstack.localstack import LOCAL_CREDENTIALS, closed_port
from tests.support.guard import ServerGuard

GUARD = ServerGuard().install()


@pytest.fixture(scope="session")
def nowhere() -> Iterator[str]:
    """An endpoint on 127.0.0.1 that refuses every connection (a port held bound, not listening)."""
    with closed_port() as sock:
        yield f"http://127.0.0.1:{sock.getsockname()[1]}"


@pytest.fixture(autouse=True)
def aws_reaches_nothing(nowhere: str, monkeypatch: pytest.MonkeyPatch) -> None:
    for name in [name for name in os.environ if name.startswith("AWS_")]:
        monkeypatch.delenv(name)
    for name, value in LOCAL_CREDENTIALS.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("AWS_ENDPOINT_URL", nowhere)
    monkeypatch.setenv("AWS_MAX_ATTEMPTS", "1")
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    monkeypatch.setenv("AWS_CONFIG_FILE", os.devnull)
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", os.devnull)


@pytest.fixture(autouse=True)
def server_guard(aws_reaches_nothing: None, request: pytest.FixtureRequest) -> Iterator[ServerGuard]:
    """Armed for the test's length; what it refused fails the test, even if the test caught the error."""
    before = len(GUARD.violations)
    GUARD.running = request.node.nodeid
    try:
        yield GUARD
    finally:
        GUARD.running = None
    refused = GUARD.violations[before:]
    if refused:
        pytest.fail("; ".join(refused), pytrace=False)
