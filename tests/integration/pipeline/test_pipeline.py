"""The pipeline as the CLI or a worker would call it: disk use and failures in the middle of a run."""

from __future__ import annotations

import gzip

import pytest

from tests.support.helpers import HEADER, FlakyClient, Stack, big_audience, job_for
from transforms.errors import SinkError
from transforms.jobs.pipeline import run
from transforms.sources.http import HttpSource


@pytest.mark.parametrize("filename", ["disk.csv", "disk.csv.gz", "disk.csv.zst", "disk.csv.bz2"])
def test_a_full_run_writes_nothing_to_local_disk(stack: Stack, disk_audit, filename: str) -> None:
    data = big_audience()  # ~18 MB: several multipart parts
    job, settings = job_for(stack, data, filename)
    disk_audit.writes.clear()
    result = run(job, settings, stack.s3, HttpSource())
    assert disk_audit.writes == []
    assert result.rows == 300_000
    assert result.bytes_read == len(data)
    landed = stack.landed(filename)
    assert len(landed) == result.bytes_written
    if filename.endswith(".gz"):
        assert gzip.decompress(landed) == HEADER + data


def test_s3_failing_mid_upload_leaves_no_object_and_no_pending_upload(stack: Stack) -> None:
    job, settings = job_for(stack, big_audience(), "midway.csv")
    with pytest.raises(SinkError) as raised:
        run(job, settings, FlakyClient(stack.s3, fail_part=2), HttpSource())
    assert raised.value.s3_code == "InternalError"
    assert stack.target_keys() == []
    assert stack.pending_uploads() == []
