"""The Catch path: leave nothing of a failed fan-out in S3, and record the failure on the job.

Removed: every staged object (range objects, manifests, the stored job), every pending multipart upload
under the staging folder (a range function killed mid-upload) and at the fan-out's targets (a finalizer
killed mid-assembly), and any target object this execution created (written since the plan started: an
object an earlier landing left is not this execution's to remove). Idempotent.
"""

from __future__ import annotations

import json
from typing import Any

from aws_lambda_powertools import Logger

from transforms import SERVICE_NAME
from transforms.aws import SDK_ERRORS, aws_failure
from transforms.ci360.payload import Job
from transforms.errors import ConnectorError, JobStoreError
from transforms.fanout.cleanup import abort_uploads, clear_staging, remove_keys
from transforms.fanout.finalize import COLUMNAR_OBJECTS
from transforms.fanout.naming import part_object
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


def failure_from(error: dict[str, Any] | None) -> ConnectorError:
    """The Catch's ``{"Error", "Cause"}`` as the job's recorded failure. Our own errors keep their code
    and message (they never carry a URL); anything else is named only by its type."""
    error = error or {}
    name = str(error.get("Error") or "States.TaskFailed")
    cause: dict[str, Any] = {}
    try:
        parsed = json.loads(error.get("Cause") or "{}")
        cause = parsed if isinstance(parsed, dict) else {}
    except (TypeError, ValueError):
        pass
    kind = _codes().get(str(cause.get("errorType") or name))
    failure = ConnectorError(f"the fan-out failed ({name}); see the execution's history")
    if kind is not None and isinstance(cause.get("errorMessage"), str):
        failure = ConnectorError(cause["errorMessage"][:MESSAGE_LIMIT])
        failure.code = kind.code  # type: ignore[misc]
    return failure


def _identity_job(identity: dict[str, Any]) -> Job:
    return Job(occurrence_id=identity["occurrenceId"], task_id=identity.get("taskId", ""),
               task_name=identity.get("taskName", ""), tenant=identity.get("tenant", ""), data_url="",
               metadata_url="", bucket=identity["bucket"], key=identity["key"], csv_header=True,
               overwrite=bool(identity.get("overwrite", True)))


def _targets(state: dict[str, Any]) -> list[str]:
    identity = state["job"]
    fmt = format_named(state["format"]) if state.get("format") else None
    if fmt is not None and fmt.name in COLUMNAR_OBJECTS and state.get("rangeCount"):
        count = int(state["rangeCount"])
        return [part_object(identity["key"], fmt, index, count) for index in range(count)]
    return [identity["key"]]


def _remove_created(s3: Any, bucket: str, targets: list[str], since: float) -> int:
    created = []
    for key in targets:
        try:
            head = s3.head_object(Bucket=bucket, Key=key)
        except SDK_ERRORS as exc:
            if aws_failure(exc).code in ("404", "NoSuchKey", "NotFound"):
                continue
            raise s3_failure(exc, "check the fan-out's targets") from None
        if head["LastModified"].timestamp() >= since - CLOCK_SLACK_S:
            created.append(key)
    return remove_keys(s3, bucket, created)


def abandon(state: dict[str, Any], error: dict[str, Any] | None, settings: Settings,
            services: Services) -> dict[str, Any]:
    identity = state.get("job") or {}
    summary: dict[str, Any] = {"abandoned": True, "removed": 0, "aborted": 0}
    failure = failure_from(error)
    summary["error"] = {"code": failure.code, "message": failure.message}
    if identity.get("bucket") and state.get("staging"):
        s3, bucket = services.s3, identity["bucket"]
        cleared = clear_staging(s3, bucket, state["staging"])
        targets = _targets(state)
        since = float(state.get("startedAt") or 0)
        aborted = sum(abort_uploads(s3, bucket, target, keys={target}, since=since - CLOCK_SLACK_S)
                      for target in targets)
        removed = _remove_created(s3, bucket, targets, since) if since else 0
        summary.update(removed=cleared["removed"] + removed, aborted=cleared["aborted"] + aborted)
    store = services.job_store(settings)
    if store and identity.get("occurrenceId"):
        try:
            store.failed(_identity_job(identity), failure)
        except JobStoreError as exc:
            logger.error("the fan-out's failure could not be recorded", extra={"error": exc.message})
            raise
    logger.error("fan-out abandoned", extra=summary)
    return summary
