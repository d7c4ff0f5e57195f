"""The pipeline as the CLI or a worker would call it: disk use and failures in the middle of a run."""

from __future__ import annotations

import gzip
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from devstack.localstack import webhook_payload
from tests.support.helpers import (
    DATA,
    HEADER,
    JSON_LAYOUT,
    ROOT,
    FlakyClient,
    Stack,
    api_gateway_event,
    big_audience,
    job_for,
)
from transforms.errors import SinkError
from transforms.jobs.pipeline import run
from transforms.sources.http import HttpSource

FORMATS = (".csv", ".csv.gz", ".csv.bz2", ".csv.zst", ".parquet", ".orc", ".jsonl", ".jsonl.gz")


def test_no_format_writes_to_local_disk(stack: Stack, tmp_path: Path) -> None:
    """Nothing touches local disk, audited by the kernel for every format.

    The webhook lands an 18 MB audience (300,000 rows: several 5 MiB parts, 4 MiB ranges and gzip
    blocks, 8 MiB row groups) into each of FORMATS, in a process of its own
    (tests/support/disk_audit.py) whose working directory and TMPDIR are a directory deleted before
    the landings: nothing at all can be created there. Around each landing it reads that process's
    ``write_bytes`` (/proc/self/io): every byte any of its threads, Python or native (Arrow's C++
    writers, ISA-L, zstd, bz2), caused to be written to a storage-backed filesystem, a temporary file
    deleted straight away included. It must not grow by one byte, and Python must open no file for
    writing (an audit hook, which also sees a file on tmpfs, where ``write_bytes`` counts nothing).

    Each format first lands the 4-row audience once, with the same audit: Python opens nothing for
    writing, and ``write_bytes`` may grow only by a few pages. That first landing imports the format's
    modules, and reading a directory or file the first time after it was written makes the filesystem
    update its access time, which the kernel charges to the reader (a fresh clone: 16 KiB measured
    for smart_open's package); a spill of any buffer of the data path would be MiBs, and the 18 MB
    landing after it is held to zero.

    Not audited: native code writing to an absolute path on a tmpfs (such as /dev/shm): memory, not
    disk. A control in the same process first writes 1 MiB with native code into a directory on this
    test's disk: where the kernel does not count that, the test skips saying so instead of passing.
    """
    if not Path("/proc/self/io").exists():
        pytest.skip("no /proc/self/io (per-process I/O accounting is Linux's): the audit cannot count")
    data = big_audience()
    data_url, metadata_url = stack.stage(data, JSON_LAYOUT)
    small_url, small_metadata_url = stack.stage(DATA, JSON_LAYOUT)
    events = [api_gateway_event(webhook_payload(small_url, small_metadata_url, f"first/audience{suffix}"))
              for suffix in FORMATS]
    events += [api_gateway_event(webhook_payload(data_url, metadata_url, f"disk/audience{suffix}"))
               for suffix in FORMATS]
    nowhere, probe = tmp_path / "cwd-and-tmpdir", tmp_path / "probe"
    nowhere.mkdir()
    probe.mkdir()
    environment = {**os.environ, "PYTHONPATH": str(ROOT), "PYTHONDONTWRITEBYTECODE": "1",
                   "TMPDIR": str(nowhere), "TMP": str(nowhere), "TEMP": str(nowhere),
                   "part_size_mb": "5", "row_group_mb": "8", "processing_mode": "sync"}
    done = subprocess.run([sys.executable, "-m", "tests.support.disk_audit", str(probe)],
                          input=json.dumps(events), capture_output=True, text=True, cwd=nowhere,
                          env=environment, timeout=600, check=False)
    assert done.returncode == 0, done.stderr[-3000:]
    report = json.loads(done.stdout.strip().splitlines()[-1])
    assert not nowhere.exists()  # the landings ran with nowhere to create a file
    if report["control"] < 1024 * 1024:
        pytest.skip(f"write_bytes grew by {report['control']} bytes for a 1 MiB native write under "
                    f"{probe}: this kernel or filesystem does not count writes, so the audit cannot")
    first, audited = report["landings"][:len(FORMATS)], report["landings"][len(FORMATS):]
    for suffix, landing in zip(FORMATS, first, strict=True):
        assert landing["statusCode"] == 200, (suffix, landing["body"])
        assert landing["python_writes"] == [] and landing["write_bytes"] <= 256 * 1024, (suffix, landing)
    for suffix, landing in zip(FORMATS, audited, strict=True):
        assert landing["statusCode"] == 200, (suffix, landing["body"])
        assert (landing["write_bytes"], landing["python_writes"]) == (0, []), suffix
        body = landing["body"]
        assert body["rows"] == 300_000 and body["bytesRead"] == len(data), suffix
        assert len(stack.landed(f"disk/audience{suffix}")) == body["bytesWritten"], suffix
    assert gzip.decompress(stack.landed("disk/audience.csv.gz")) == HEADER + data


def test_s3_failing_mid_upload_leaves_no_object_and_no_pending_upload(stack: Stack) -> None:
    job, settings = job_for(stack, big_audience(), "midway.csv")
    with pytest.raises(SinkError) as raised:
        run(job, settings, FlakyClient(stack.s3, fail_part=2), HttpSource())
    assert raised.value.s3_code == "InternalError"
    assert stack.target_keys() == []
    assert stack.pending_uploads() == []
