"""The unit suite's isolation holds: AWS leads nowhere, and the guard refuses a process or a server the
test does not run itself (tests/unit/conftest.py, tests/support/guard.py)."""

from __future__ import annotations

import subprocess
import sys
from typing import Any

import boto3
import pytest
from botocore.exceptions import EndpointConnectionError

from tests.support.guard import ServerGuard, is_loopback, only_this_machine


def test_aws_calls_fail_at_once_on_loopback(nowhere: str) -> None:
    assert nowhere.startswith("http://127.0.0.1:")
    with pytest.raises(EndpointConnectionError, match=nowhere):
        boto3.client("s3").list_buckets()


def test_starting_a_process_is_refused_and_fails_the_test(server_guard: ServerGuard) -> None:
    with pytest.raises(RuntimeError, match="started a process"):
        subprocess.run([sys.executable, "-c", "pass"], check=False)
    # Recorded as well, so that catching the error would not hide it: the guard fails the test at its end.
    assert "started a process (subprocess.Popen)" in server_guard.violations.pop()


def test_only_servers_this_process_runs_may_be_reached(server_guard: ServerGuard, fault_server: Any) -> None:
    ours = fault_server._httpd.server_address[1]
    assert server_guard.refusal("socket.connect", (None, ("127.0.0.1", ours))) is None
    theirs = next(port for port in range(49152, 65536) if port not in server_guard.ports_held_here())
    assert "does not run itself" in server_guard.refusal("socket.connect", (None, ("127.0.0.1", theirs)))
    assert "does not run itself" in server_guard.refusal("socket.connect", (None, ("192.0.2.1", ours)))


def test_no_test_may_contact_another_machine() -> None:
    assert is_loopback("127.0.0.1") and is_loopback("::1") and is_loopback("localhost")
    assert not any(is_loopback(host) for host in ("192.0.2.1", "169.254.169.254", "x.example"))
    only_this_machine("socket.connect", (None, ("127.0.0.1", 80)))
    only_this_machine("socket.connect", (None, "/run/unix.sock"))
    with pytest.raises(ConnectionRefusedError, match="only contact this machine"):
        only_this_machine("socket.connect", (None, ("192.0.2.1", 80)))
