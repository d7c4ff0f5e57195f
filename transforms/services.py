"""The outside services a run talks to, built once per container by the entry point and passed in."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from transforms.job_store import JobStore
from transforms.settings import Settings
from transforms.source import HttpSource


@dataclass(frozen=True)
class Services:
    s3: Any
    http: HttpSource
    glue: Any = None  # only when settings.glue_database is set
    sqs: Any = None  # only when settings.jobs_queue_url is set
    dynamodb: Any = None  # only when a jobs or idempotency table is set

    def job_store(self, settings: Settings) -> JobStore | None:
        if settings.jobs_table and self.dynamodb is not None:
            return JobStore(self.dynamodb, settings.jobs_table)
        return None
