"""Fixtures for every test, none of which starts a process: the settings cleared, the disk-write audit,
the fault server (in this process), a refusing port, the function's log stream, the command line's input
files. And a guard, an audit hook (tests/support/guard.py), that refuses any connection this process
opens to an address other than loopback (the guide's rule: tests only ever contact this machine).

The servers (moto, SeaweedFS) and the AWS environment are tests/integration/conftest.py's; unit tests
get an environment that reaches nothing (tests/unit/conftest.py)."""

from __future__ import annotations

import io
import os
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.support.guard import only_this_machine
from tests.support.helpers import DATA, DDL_METADATA, JSON_LAYOUT

# The function's settings a test may have set; each test starts without them (the allowlist admits the
# local servers and the fault server, all on loopback, as the local stack does).
SETTINGS = ("csv_header", "result_url_ttl", "part_size_mb", "upload_concurrency", "gzip_level",
            "s3_key_prefix", "key_template", "overwrite", "encryption")


sys.addaudithook(only_this_machine)


@pytest.fixture(autouse=True)
def clean_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in SETTINGS:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("source_host_allowlist", "http://127.0.0.1:*")


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
def metadata(tmp_path: Path) -> str:
    """A layout file for the command line's ddl."""
    path = tmp_path / "audience_metadata.json"
    path.write_bytes(DDL_METADATA)
    return str(path)


@pytest.fixture
def files(tmp_path: Path) -> tuple[str, str]:
    """A staged audience as local files for the command line: (data, metadata)."""
    data, metadata = tmp_path / "audience.csv", tmp_path / "audience_metadata.json"
    data.write_bytes(DATA)
    metadata.write_bytes(JSON_LAYOUT)
    return str(data), str(metadata)
