"""What the webhook does with a valid job: land it now, or queue it for the worker.

CI360 waits at most 60 s and API Gateway REST about 29 s, while a large audience takes minutes. In
``auto`` mode the data file's size decides (learned from its first byte, not downloaded); the layout
is fetched and checked before a job is queued, so a bad layout is still refused at once.

A repeated call is answered from what is recorded about its job before anything else is checked:
the first call's result (landed) or status (accepted, running), never a conflict for the object the
first call landed. The answer is an ``Outcome``; ``handler`` says it in HTTP.
"""

from __future__ import annotations

import dataclasses
import json

from transforms.aws import AwsFailure, translated
from transforms.ci360.payload import Job
from transforms.errors import ConfigurationError, ConflictError, QueueError, UnprocessableError
from transforms.jobs.landing import AlreadyRunning, guard_for, known_outcome, land
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


def choose_mode(job: Job, settings: Settings, services: Services, deadline: Deadline | None = None) -> str:
    if job.processing_mode == "async" or (job.processing_mode == "auto" and settings.jobs_queue):
        if job.processing_mode == "async" and not settings.jobs_queue and settings.processing_mode != "async":
            # The call asked for it (the processing_mode send parameter): refuse the call, not the
            # deployment, which is fine as it is for every call that does not ask.
            raise UnprocessableError("sendParameters.processing_mode async: this deployment has no job queue "
                                     "(jobs_queue is not set)", [{"field": "sendParameters.processing_mode"}])
        if not settings.jobs_queue or services.sqs is None:
            raise ConfigurationError("processing_mode async needs jobs_queue (the job queue) to be set")
        if job.processing_mode == "async":
            return "async"
        size = services.http.size(job.data_url, "data", deadline)
        return "async" if size is None or size > settings.sync_max_bytes else "sync"
    return "sync"


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
    try:
        with translated(queue_error):
            services.sqs.send_message(QueueUrl=services.queue_url(settings.jobs_queue),
                                      MessageBody=job_message(job))
    except QueueError as error:
        if store:
            store.failed(job, error)  # a JobStoreError here is as retryable as the queue's own
        raise
    return Outcome("accepted", mode)
