"""What the webhook does with a valid job: land it now, queue it for the worker, or start a fan-out.

CI360 waits at most 60 s and API Gateway REST about 29 s, while a large audience takes minutes. In
``auto`` mode the data file's size decides (learned from its first byte, not downloaded); the layout
is fetched and checked before a job is queued, so a bad layout is still refused at once. A data file of
at least ``fanout_min_mb`` (when a fan-out state machine is configured) is too large for one function's
15 minutes: it runs as a Step Functions execution instead (README, "Fan-out").

A repeated call is answered from what is recorded about its job before anything else is checked:
the first call's result (landed) or status (accepted, running), never a conflict for the object the
first call landed. The answer is an ``Outcome``; ``handler`` says it in HTTP.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json

from transforms.aws import SDK_ERRORS, AwsFailure, aws_failure, translated
from transforms.ci360.payload import Job
from transforms.errors import (
    ConfigurationError,
    ConflictError,
    OrchestrationError,
    QueueError,
    UnprocessableError,
)
from transforms.jobs.landing import AlreadyRunning, guard_for, known_outcome, land, landing_identity
from transforms.jobs.outcome import Outcome
from transforms.jobs.pipeline import fetch_layout, refuse_existing
from transforms.jobs.services import Services
from transforms.progress import Deadline
from transforms.schema.columns import build_schema
from transforms.settings import Settings


def job_message(job: Job) -> str:
    """The queued job, with its key already rendered, so a redelivery lands at the same key."""
    return json.dumps({"job": dataclasses.asdict(job)})


def job_from_message(body: str) -> Job:
    fields = json.loads(body)["job"]
    return Job(**fields)


def fanout_enabled(settings: Settings, services: Services) -> bool:
    """A fan-out needs its state machine and a threshold (``fanout_min_mb=0`` turns it off)."""
    return bool(settings.fanout_min_bytes > 0 and settings.fanout_state_machine
                and services.stepfunctions is not None and services.fanout_jobs is not None)


def choose_mode(job: Job, settings: Settings, services: Services, deadline: Deadline | None = None) -> str:
    """sync (land now), async (the worker) or fanout (a Step Functions execution).

    In ``async`` mode the size is asked for only when a fan-out is configured: a file too large for one
    function must not be queued for a worker that would fail it after 15 minutes."""
    if job.processing_mode == "async" or (job.processing_mode == "auto" and settings.jobs_queue):
        if job.processing_mode == "async" and not settings.jobs_queue and settings.processing_mode != "async":
            # The call asked for it (the processing_mode send parameter): refuse the call, not the
            # deployment, which is fine as it is for every call that does not ask.
            raise UnprocessableError("sendParameters.processing_mode async: this deployment has no job queue "
                                     "(jobs_queue is not set)", [{"field": "sendParameters.processing_mode"}])
        if not settings.jobs_queue or services.sqs is None:
            raise ConfigurationError("processing_mode async needs jobs_queue (the job queue) to be set")
        fanout = fanout_enabled(settings, services)
        if job.processing_mode == "async" and not fanout:
            return "async"
        size = services.http.size(job.data_url, "data", deadline)
        if fanout and size is not None and size >= settings.fanout_min_bytes:
            return "fanout"
        if job.processing_mode == "async":
            return "async"
        return "async" if size is None or size > settings.sync_max_bytes else "sync"
    return "sync"


# Step Functions keeps a STANDARD execution's name for 90 days, closed or not: a job that failed and is
# sent again needs a new name. Names are the landing's hash and an attempt number, 1, 2, ...: the same
# for every delivery of one attempt, so a repeat can never start a second execution of it.
MAX_ATTEMPTS = 20


def execution_name(job: Job, attempt: int = 1) -> str:
    """The landing's key as the idempotency layer hashes it (Powertools: md5 of the sorted JSON of
    ``landing_identity``), then the attempt: at most 80 characters of [0-9a-f-], as Step Functions allows."""
    identity = json.dumps(landing_identity(job), sort_keys=True).encode()
    return f"{hashlib.md5(identity, usedforsecurity=False).hexdigest()}-{attempt}"


def orchestration_error(failure: AwsFailure) -> OrchestrationError:
    return OrchestrationError(f"the fan-out could not be started ({failure.code})", failure.code)


def start_fanout(job: Job, settings: Settings, services: Services) -> str:
    """Store the job where the fan-out's steps read it, and start its execution with identifiers only
    (Step Functions keeps an execution's input 90 days: no presigned URL goes there), unless it is running.

    ``ExecutionAlreadyExists`` under the attempt's name: a running execution is this very job's (an
    earlier delivery got this far; Step Functions answers so when the input differs, such as a key
    rendered with another ``{timestamp}``), and is not started again. A closed one is an attempt that
    ended before (the job record said failed, or expired): the next name is tried. Returns the name."""
    client = services.stepfunctions
    machine = services.state_machine_arn(settings.fanout_state_machine)
    execution_input = json.dumps({"job": services.fanout_jobs.store(job, settings)})
    for attempt in range(1, MAX_ATTEMPTS + 1):
        name = execution_name(job, attempt)
        try:
            client.start_execution(stateMachineArn=machine, name=name, input=execution_input)
            return name
        except SDK_ERRORS as exc:
            failure = aws_failure(exc)
            if failure.code != "ExecutionAlreadyExists":
                services.fanout_jobs.discard(job, settings)
                raise orchestration_error(failure) from None
        arn = machine.replace(":stateMachine:", ":execution:", 1) + f":{name}"
        with translated(orchestration_error):
            status = client.describe_execution(executionArn=arn)["status"]
        if status in ("RUNNING", "PENDING_REDRIVE"):
            return name
    services.fanout_jobs.discard(job, settings)
    raise OrchestrationError(f"the fan-out was started {MAX_ATTEMPTS} times already; see its executions",
                             "ExecutionAlreadyExists")


def queue_error(failure: AwsFailure) -> QueueError:
    return QueueError(f"the job could not be queued ({failure.code})", failure.code)


def handle_job(job: Job, settings: Settings, services: Services, deadline: Deadline | None = None) -> Outcome:
    store = services.job_store(settings)
    guard = guard_for(settings, services, deadline)
    known = known_outcome(job, store, guard)  # a repeat: the first call's answer, before any other check
    if known is not None:
        return known
    mode = choose_mode(job, settings, services, deadline)
    try:
        refuse_existing(services.s3, job)  # overwrite=false: refused now, not accepted and failed later
    except ConflictError:
        known = known_outcome(job, store, guard)  # landed by a concurrent delivery of this very job
        if known is not None:
            return known
        raise
    if mode == "sync":
        try:
            return Outcome("succeeded", mode, land(job, settings, services, "sync", deadline))
        except AlreadyRunning:
            return Outcome("running", mode)
    # Refuse a bad layout now, not later.
    build_schema(fetch_layout(job, services.http, deadline, settings), job.column_types)
    existing = store.accept(job, mode) if store else None
    if existing is not None:
        if existing.get("status") == "succeeded":
            return Outcome("succeeded", str(existing.get("mode", mode)), existing["result"])
        return Outcome(existing.get("status", "accepted"), str(existing.get("mode", mode)))
    if mode == "fanout":
        try:
            start_fanout(job, settings, services)
        except OrchestrationError as error:
            if store:
                store.failed(job, error)
            raise
        return Outcome("accepted", mode)
    try:
        with translated(queue_error):
            services.sqs.send_message(QueueUrl=services.queue_url(settings.jobs_queue),
                                      MessageBody=job_message(job))
    except QueueError as error:
        if store:
            store.failed(job, error)  # a JobStoreError here is as retryable as the queue's own
        raise
    return Outcome("accepted", mode)
