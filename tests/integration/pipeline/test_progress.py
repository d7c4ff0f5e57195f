"""A deadline reached mid-file, against moto: the run stops with parts sent and leaves nothing."""

from __future__ import annotations

import pytest

from tests.support.helpers import Stack, big_audience, job_for
from transforms.errors import DeadlineError
from transforms.jobs.pipeline import run
from transforms.progress import Deadline, Snapshot
from transforms.sources.http import HttpSource


def test_a_deadline_reached_mid_file_aborts_cleanly(stack: Stack) -> None:
    job, settings = job_for(stack, big_audience(300_000), "late.csv")  # ~18 MB in 5 MiB parts
    clock = {"ms": 40_000}

    class Clocked(Deadline):
        """The function's time runs at 1.5 s per MiB read, whatever the size of each read."""

        def check(self, snapshot: Snapshot) -> None:
            clock["ms"] = 40_000 - int(1_500 * snapshot.bytes_done / (1 << 20))
            super().check(snapshot)

    with pytest.raises(DeadlineError) as raised:
        run(job, settings, stack.s3, HttpSource(),
            deadline=Clocked(lambda: clock["ms"], margin_s=20, min_sample_s=999))
    assert raised.value.details[0]["bytes_done"] > 5 << 20  # it stopped mid-file, parts already sent
    assert stack.target_keys() == []
    assert stack.pending_uploads() == []
