"""The Catch path: leave nothing of a failed fan-out in S3, and record the failure on the job.

Removed: every staged object (range objects, manifests, the stored job, the assembly's plan), every
pending multipart upload under the staging folder (a range function killed mid-upload) and at the
fan-out's targets (the assembly's uploads, by the ids in PrepareAssembly's plan, and any other started
since the plan began), and any target object this execution created (written since the plan started and
carrying its owner metadata: an object an earlier landing left is not this execution's to remove).
Idempotent.
"""

from __future__ import annotations

import json
from os.path import commonprefix
from typing import Any

from aws_lambda_powertools import Logger

from transforms import SERVICE_NAME
from transforms.aws import SDK_ERRORS, aws_failure
from transforms.ci360.payload import Job
from transforms.errors import ConnectorError, JobStoreError
from transforms.fanout.cleanup import abort_uploads, clear_staging, remove_keys
from transforms.fanout.manifests import get_json
from transforms.fanout.naming import (
    COLUMNAR_OBJECTS,
    OWNER_METADATA,
    assembly_plan,
    owner_tag,
    part_object,
    staging_prefix,
)
from transforms.fanout.stored_job import read_stored
from transforms.formats.registry import format_named
from transforms.jobs.services import Services
from transforms.settings import Settings
from transforms.sinks.s3 import s3_failure

logger = Logger(service=SERVICE_NAME, child=True)

CLOCK_SLACK_S = 2.0  # LastModified has whole seconds; the plan's clock and S3's are not the same clock
MESSAGE_LIMIT = 1000


def _codes() -> dict[str, type[ConnectorError]]:
    found: dict[str, type[ConnectorError]] = {}
    pending: list[type[ConnectorError]] = [ConnectorError]
    while pending:
        kind = pending.pop()
        found[kind.__name__] = kind
        pending += kind.__subclasses__()
    return found


def _json_object(text: Any) -> dict[str, Any]:
    try:
        parsed = json.loads(text) if isinstance(text, str) else None
    except ValueError:
        return {}
    return parsed if isinstance(parsed, dict) else {}


def failure_from(error: dict[str, Any]) -> ConnectorError:
    """The Catch's ``{"Error", "Cause"}`` as the job's recorded failure.

    ``handler.fanout`` raises our errors with their JSON (``{"code", "message", "details"}``) as the
    message, which Step Functions puts in the Cause either as it is or inside Lambda's own
    ``{"errorType", "errorMessage"}``; an error of ours raised directly is known by its type. Those keep
    their code and message (ours never carry a URL); anything else is named only by its type."""
    name = str(error.get("Error") or "States.TaskFailed")
    cause = _json_object(error.get("Cause"))
    ours = cause if "code" in cause else _json_object(cause.get("errorMessage"))
    if isinstance(ours.get("code"), str) and isinstance(ours.get("message"), str):
        failure = ConnectorError(ours["message"][:MESSAGE_LIMIT], ours.get("details") or [])
        failure.code = ours["code"]  # type: ignore[misc]
        return failure
    kind = _codes().get(str(cause.get("errorType") or name))
    if kind is not None and isinstance(cause.get("errorMessage"), str):
        failure = ConnectorError(cause["errorMessage"][:MESSAGE_LIMIT])
        failure.code = kind.code  # type: ignore[misc]
        return failure
    return ConnectorError(f"the fan-out failed ({name[:100]}); see the execution's history")


def _identity(job: dict[str, Any]) -> dict[str, Any]:
    """The state's job identity; the execution's input (a queued job's fields) when no step planned yet."""
    if "occurrence_id" not in job:
        return job
    return {"occurrenceId": job["occurrence_id"], "taskId": job.get("task_id", ""),
            "taskName": job.get("task_name", ""), "tenant": job.get("tenant", ""),
            "bucket": job.get("bucket"), "key": job.get("key"), "overwrite": job.get("overwrite", True)}


def _identity_job(identity: dict[str, Any]) -> Job:
    return Job(occurrence_id=identity["occurrenceId"], task_id=identity.get("taskId", ""),
               task_name=identity.get("taskName", ""), tenant=identity.get("tenant", ""), data_url="",
               metadata_url="", bucket=identity["bucket"], key=identity["key"], csv_header=True,
               overwrite=bool(identity.get("overwrite", True)))


def _targets(state: dict[str, Any], identity: dict[str, Any]) -> list[str]:
    fmt = format_named(state["format"]) if state.get("format") else None
    if fmt is not None and fmt.name in COLUMNAR_OBJECTS and state.get("rangeCount"):
        count = int(state["rangeCount"])
        return [part_object(identity["key"], fmt, index, count) for index in range(count)]
    return [identity["key"]]


def _remove_created(s3: Any, bucket: str, targets: list[str], since: float, owner: str) -> int:
    """Delete the targets this fan-out wrote: written since ``since`` and tagged with its ``owner``
    (another writer's object at the key, such as one that made an ``overwrite=false`` finalize fail,
    is left alone)."""
    wanted, recent, ours = set(targets), [], []
    try:
        pages = s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=commonprefix(targets))
        for page in pages:
            recent += [item["Key"] for item in page.get("Contents", []) if item["Key"] in wanted
                       and item["LastModified"].timestamp() >= since - CLOCK_SLACK_S]
        for key in recent:
            metadata = s3.head_object(Bucket=bucket, Key=key).get("Metadata") or {}
            if metadata.get(OWNER_METADATA) == owner:
                ours.append(key)
    except SDK_ERRORS as exc:
        raise s3_failure(exc, "check the fan-out's targets") from None
    return remove_keys(s3, bucket, ours)


def _abort_planned(s3: Any, bucket: str, staging: str) -> int:
    """The uploads PrepareAssembly started, by their ids in its plan (exact: another writer's upload at the
    key is never touched); one already completed or aborted is skipped."""
    plan = get_json(s3, bucket, assembly_plan(staging))
    aborted = 0
    for target in (plan or {}).get("targets", []):
        if not target.get("upload"):
            continue
        try:
            s3.abort_multipart_upload(Bucket=bucket, Key=target["key"], UploadId=target["upload"])
            aborted += 1
        except SDK_ERRORS as exc:
            if aws_failure(exc).code not in ("NoSuchUpload", "404"):
                raise s3_failure(exc, "abort the assembly's uploads") from None
    return aborted


def abandon(state: dict[str, Any], error: dict[str, Any] | None, settings: Settings,
            services: Services) -> dict[str, Any]:
    """Remove everything the fan-out wrote; with ``error`` (the Catch's), also record the job failed.
    ``error=None`` only cleans up (the hand-off to one function: the job is not failing)."""
    identity = _identity(state.get("job") or {})
    summary: dict[str, Any] = {"abandoned": True, "removed": 0, "aborted": 0}
    store = services.job_store(settings)
    record = store.get(identity["occurrenceId"]) if store and identity.get("occurrenceId") else None
    landed = bool(record and record.get("status") == "succeeded")  # then its objects are the landing's
    stored_job: Job | None = None
    failure = failure_from(error) if error is not None else None
    if failure is not None:
        summary["error"] = {"code": failure.code, "message": failure.message}
    if identity.get("bucket") and identity.get("key"):
        s3, bucket = services.s3, identity["bucket"]
        # Named by the job alone: found even when the plan failed after storing the job there.
        staging = state.get("staging") or staging_prefix(identity["occurrenceId"], identity.get("taskId", ""),
                                                         bucket, identity["key"])
        found = read_stored(s3, bucket, staging)  # the whole job, for its record, before it is cleared
        stored_job = found[0] if found else None
        planned = _abort_planned(s3, bucket, staging)  # before the plan goes with the staging folder
        cleared = clear_staging(s3, bucket, staging)
        targets = _targets(state, identity)
        since = float(state.get("startedAt") or 0)
        aborted = planned + abort_uploads(s3, bucket, commonprefix(targets), keys=set(targets),
                                          since=since - CLOCK_SLACK_S)
        removed = 0
        if since and not landed:
            removed = _remove_created(s3, bucket, targets, since, owner_tag(staging))
        summary.update(removed=cleared["removed"] + removed, aborted=cleared["aborted"] + aborted)
    if failure is not None and store and identity.get("occurrenceId"):
        try:
            store.failed(stored_job or _identity_job(identity), failure)
        except JobStoreError as exc:
            logger.error("the fan-out's failure could not be recorded", extra={"error": exc.message})
            raise
    if failure is not None:
        logger.error("fan-out abandoned", extra=summary)
    else:
        logger.info("fan-out's staging cleared for a one-function landing", extra=summary)
    return summary
