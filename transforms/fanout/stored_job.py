"""The job of a fan-out, kept in its staging folder rather than in the execution.

A job holds its presigned URLs (credentials). Step Functions keeps an execution's input and every
state's input and output for 90 days, readable by anyone allowed ``states:GetExecutionHistory``; so
the dispatcher stores the job here (``store_job``, encrypted as every object we write) and starts the
execution with identifiers only (``execution_input``), and every step reads the job back
(``read_job``). The plan adds the layout it fetched, so the ranges never fetch it again.
"""

from __future__ import annotations

import base64
from typing import Any

from transforms.ci360.payload import Job
from transforms.fanout.errors import RangesIncomplete
from transforms.fanout.manifests import get_json, put_json
from transforms.fanout.naming import job_object, staging_prefix
from transforms.jobs.dispatch import job_from_message, job_message
from transforms.jobs.pipeline import encryption
from transforms.settings import Settings


def staging_for(job: Job) -> str:
    return staging_prefix(job.occurrence_id, job.task_id, job.bucket, job.key)


def identifiers(job: Job) -> dict[str, Any]:
    """The job as the execution carries it: enough to name it and record its outcome, no presigned URL."""
    staging = staging_for(job)
    return {"occurrenceId": job.occurrence_id, "taskId": job.task_id, "taskName": job.task_name,
            "tenant": job.tenant, "bucket": job.bucket, "key": job.key, "overwrite": job.overwrite,
            "staging": staging, "jobObject": job_object(staging)}


def store_job(s3: Any, job: Job, settings: Settings, layout: bytes | None = None) -> dict[str, Any]:
    """Write the job (and the layout, once fetched) to the staging folder; returns ``identifiers(job)``,
    the execution's input."""
    ids = identifiers(job)
    stored: dict[str, Any] = {"message": job_message(job)}
    if layout is not None:
        stored["layout"] = base64.b64encode(layout).decode("ascii")
    put_json(s3, job.bucket, ids["jobObject"], stored, encryption(settings))
    return ids


def read_stored(s3: Any, bucket: str, staging: str) -> tuple[Job, bytes | None] | None:
    """(the job, the layout if the plan stored it), or None when nothing is stored (cleared, or never)."""
    stored = get_json(s3, bucket, job_object(staging))
    if stored is None:
        return None
    layout = base64.b64decode(stored["layout"]) if stored.get("layout") else None
    return job_from_message(stored["message"]), layout


def read_job(s3: Any, ids: dict[str, Any]) -> Job:
    """The job from the execution's identifiers (``identifiers``' shape)."""
    staging = ids.get("staging") or staging_prefix(ids["occurrenceId"], ids.get("taskId", ""), ids["bucket"],
                                                   ids["key"])
    found = read_stored(s3, ids["bucket"], staging)
    if found is None:
        raise RangesIncomplete("the fan-out's job is missing from its staging folder "
                               f"(s3://{ids['bucket']}/{job_object(staging)}): cleared, or never stored")
    return found[0]
