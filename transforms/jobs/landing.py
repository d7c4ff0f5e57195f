"""Landing a job exactly once, and keeping its job record up to date.

The webhook (inline) and the worker (from the queue) are two Lambda functions landing the same jobs,
and CI360 or SQS may deliver a job more than once. aws-lambda-powertools Idempotency (DynamoDB) keys
each landing on occurrence, task, bucket and target as CI360 named it, under a fixed prefix of ours
(``KEY_PREFIX``), so every function, deployment and code layout computes the same key: a repeat gets
the first landing's result without running again. (Powertools' default prefix is the function's name
and the module path of the guarded function: the webhook and the worker would never see each other's
records, and moving this module would forget every landing.) A failed landing leaves no idempotency
record, so a retry does run again.

Every repeat is answered from what is recorded before anything is marked or checked: the job record
first, then the idempotency record. Neither store's failure is ever mistaken for "not landed yet".
"""

from __future__ import annotations

import time
from collections.abc import Callable
from functools import partial
from typing import Any

from aws_lambda_powertools import Logger
from aws_lambda_powertools.utilities.idempotency import (
    DynamoDBPersistenceLayer,
    IdempotencyConfig,
    idempotent_function,
)
from aws_lambda_powertools.utilities.idempotency.exceptions import (
    BaseError as IdempotencyError,
)
from aws_lambda_powertools.utilities.idempotency.exceptions import (
    IdempotencyAlreadyInProgressError,
    IdempotencyItemNotFoundError,
    IdempotencyPersistenceLayerError,
)
from aws_lambda_powertools.utilities.idempotency.persistence.datarecord import STATUS_CONSTANTS

from transforms import SERVICE_NAME
from transforms.aws import SDK_ERRORS, aws_failure, translated
from transforms.ci360.payload import Job
from transforms.errors import ConnectorError, JobStoreError
from transforms.jobs.outcome import Outcome
from transforms.jobs.pipeline import run
from transforms.jobs.services import Services
from transforms.jobs.store import JobStore, store_error
from transforms.progress import Deadline
from transforms.settings import Settings

logger = Logger(service=SERVICE_NAME, child=True)

# The idempotency key is KEY_PREFIX#md5(identity): never derived from a function or module name.
# Changing it (or landing_identity) forgets every landing inside the idempotency window.
KEY_PREFIX = "ci360-s3-connector#landing"
ROLE = "idempotency"  # the table's role, named in every error


class AlreadyRunning(Exception):
    """Another delivery of the same job is landing it right now."""


def landing_identity(job: Job) -> dict[str, str]:
    """Occurrence, task and target as CI360 named it: the key *before* templates are rendered, so a
    repeated call whose ``{timestamp}`` renders differently is still the same landing."""
    target = job.send_parameters.get("s3_filename", job.key)
    return {"occurrenceId": job.occurrence_id, "taskId": job.task_id, "bucket": job.bucket, "target": target}


class Guard:
    """The exactly-once record of each landing (Powertools Idempotency on DynamoDB)."""

    def __init__(self, dynamodb: Any, table: str, hours: int, deadline: Deadline | None = None) -> None:
        self._table = table
        # Powertools bounds a landing's in-progress record by the invocation's time left (a run the
        # platform killed does not block its retry); that time is all it reads from a Lambda context.
        clock = _TimeLeft(deadline.platform_ms_left) if deadline else None
        self._config = IdempotencyConfig(expires_after_seconds=hours * 3600, lambda_context=clock)
        self._persistence = DynamoDBPersistenceLayer(table, boto3_client=dynamodb)
        self._persistence.configure(self._config, key_prefix=KEY_PREFIX)

    def lookup(self, job: Job) -> Outcome | None:
        """The landing's record: succeeded (with the result), running (and not timed out), or None."""
        unread = partial(store_error, role=ROLE, table=self._table, action="read the landing's record")
        try:
            with translated(unread):
                record = self._persistence.get_record(data=landing_identity(job))
        except IdempotencyItemNotFoundError:
            return None
        if record is None:
            return None
        if record.status == STATUS_CONSTANTS["COMPLETED"]:
            return Outcome("succeeded", "", record.response_json_as_dict())
        expiry = record.in_progress_expiry_timestamp
        live = expiry is None or expiry > time.time() * 1000  # milliseconds, as Powertools writes it
        if record.status == STATUS_CONSTANTS["INPROGRESS"] and live:
            return Outcome("running", "")
        return None  # expired, or an in-progress run that timed out: the landing may run again

    def once(self, job: Job, landing: Callable[[], dict[str, Any]]) -> tuple[dict[str, Any], bool]:
        """Run ``landing`` unless this landing ran before (then its first result) or is running now.

        Also says whether the idempotency record holds the result (False: it landed, but the record
        could not be saved)."""
        landed: list[dict[str, Any]] = []

        def guarded(identity: dict[str, str]) -> dict[str, Any]:
            landed.append(landing())
            return landed[0]

        try:
            result = idempotent_function(guarded, data_keyword_argument="identity", key_prefix=KEY_PREFIX,
                                         persistence_store=self._persistence,
                                         config=self._config)(identity=landing_identity(job))
            return result, True
        except IdempotencyAlreadyInProgressError:
            raise AlreadyRunning(job.occurrence_id) from None
        except IdempotencyPersistenceLayerError as exc:
            cause = aws_failure(_in_chain(exc, SDK_ERRORS) or exc)
            if landed:  # the object landed; only its idempotency record could not be saved
                failure = store_error(cause, ROLE, self._table, "save the landing")
                logger.error("landed, but the idempotency record could not be saved",
                             extra={"error": failure.message})
                return landed[0], False
            failed = _in_chain(exc, ConnectorError)
            if failed is not None:  # the landing failed, then its record could not be released
                logger.error("the landing failed and its idempotency record could not be released",
                             extra={"error_code": failed.code, "error_message": failed.message})
            raise store_error(cause, ROLE, self._table, "record the landing") from None
        except IdempotencyError as exc:  # Powertools' own state errors (IdempotencyInconsistentStateError)
            raise JobStoreError(f"the {ROLE} table {self._table!r} gave inconsistent answers "
                                f"({type(exc).__name__}); the call can be retried", type(exc).__name__,
                                ROLE, self._table) from None


class _TimeLeft:
    """The one part of a Lambda context Powertools Idempotency reads, from the deadline's clock."""

    def __init__(self, remaining_ms: Callable[[], int]) -> None:
        self.get_remaining_time_in_millis = remaining_ms


def _in_chain(exc: BaseException, kind: type | tuple[type, ...]) -> Any:
    """The first exception of ``kind`` among ``exc`` and what it was raised from or during (Powertools
    wraps DynamoDB's failure, and raises it while handling the landing's own)."""
    seen: BaseException | None = exc
    while seen is not None:
        if isinstance(seen, kind):
            return seen
        seen = seen.__cause__ or seen.__context__
    return None


def guard_for(settings: Settings, services: Services, deadline: Deadline | None = None) -> Guard | None:
    if settings.idempotency_table and services.dynamodb is not None:
        return Guard(services.dynamodb, settings.idempotency_table, settings.idempotency_hours, deadline)
    return None


def known_outcome(job: Job, store: JobStore | None, guard: Guard | None) -> Outcome | None:
    """What is already recorded about this job, read before anything is marked or checked.

    A landing recorded only by the idempotency guard (its job record could not be updated in time)
    is written back to the job record here, so the record of a landing that happened is never lost.
    """
    record = store.get(job.occurrence_id) if store else None
    status = record.get("status") if record else None
    mode = str(record.get("mode", "sync")) if record else "sync"
    if record and status == "succeeded":
        return Outcome("succeeded", mode, record.get("result"))
    landed = guard.lookup(job) if guard else None
    if landed and landed.status == "succeeded":
        if store:
            store.succeeded(job, landed.result or {})
        return Outcome("succeeded", mode, landed.result)
    if landed:
        return Outcome("running", mode)
    if status == "accepted" or (status == "running" and (guard is None or mode in ("async", "fanout"))):
        # Queued or being landed by the worker (SQS delivers it again if that run died), or by a fan-out's
        # execution (which marks the job failed if it fails).
        return Outcome(status, mode)
    return None  # new, failed before, or a synchronous run that died: land (the guard keeps it once)


def land(job: Job, settings: Settings, services: Services, mode: str,
         deadline: Deadline | None = None) -> dict[str, Any]:
    """Run the job (once), record its outcome, and return the landing's result.

    ``deadline`` stops the run before the platform's time limit, and bounds its in-progress record."""
    store = services.job_store(settings)
    guard = guard_for(settings, services, deadline)
    known = known_outcome(job, store, guard)  # before anything is marked: a duplicate changes nothing
    if known and known.status == "succeeded":
        return known.result or {}
    if store:
        finished = store.running(job, mode)  # never over a succeeded record (a concurrent duplicate)
        if finished is not None:
            return finished.get("result") or {}

    def landing() -> dict[str, Any]:
        return run(job, settings, services.s3, services.http, services.glue, deadline).to_json()

    try:
        result, guarded = guard.once(job, landing) if guard else (landing(), False)
    except AlreadyRunning:
        raise
    except ConnectorError as error:
        _record_failure(store, job, error)
        raise
    except Exception:
        _record_failure(store, job, ConnectorError("an unexpected error occurred; see the function's logs"))
        raise
    if store:
        _record_success(store, job, result, recorded_elsewhere=guarded)
    return result


def _record_failure(store: JobStore | None, job: Job, error: ConnectorError) -> None:
    """Best effort: the failure being reported matters more than the store's own."""
    if not store:
        return
    try:
        store.failed(job, error)
    except JobStoreError as store_failure:
        logger.error("the job's failure could not be recorded", extra={"error": store_failure.message})


def _record_success(store: JobStore, job: Job, result: dict[str, Any], recorded_elsewhere: bool) -> None:
    """The object landed. If its job record cannot say so, fail retryably when the idempotency record
    holds the landing (a retry answers with it and repairs the job record); otherwise the landing is
    reported as it is, with the failure logged (a retry would land it again)."""
    try:
        store.succeeded(job, result)
    except JobStoreError as error:
        logger.error("landed, but the job record could not be updated",
                     extra={"error": error.message, "key": result.get("key"), "rows": result.get("rows")})
        if recorded_elsewhere:
            raise
