"""A job's final outcome, reported once: to CI360 and EventBridge (``transforms.outcomes``), and the
delivery report written on the job's record.

"Once" is the job record's: its ``events`` attribute is claimed with a conditional write before anything
is sent, so a repeated webhook answered from the records, a message SQS delivers twice, or two
deliveries of the same job at once, send nothing new; a new run of a job that failed (its record marked
running again, ``events`` dropped) reports its own outcome. Without a jobs table every call is its own
outcome and is reported.

Who calls it, with which outcome: the webhook for every answer it gives about a task it understood
(200, and 4xx/5xx after the payload was parsed; never 202), the worker for a landing or a failure
retrying cannot help (or its last receive), a fan-out's finalizer for the whole job.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from aws_lambda_powertools import Logger

from transforms import SERVICE_NAME
from transforms.ci360.payload import Job
from transforms.errors import ConnectorError, JobStoreError
from transforms.jobs.services import Services
from transforms.outcomes.report import report_outcome
from transforms.progress import Deadline
from transforms.settings import Settings

logger = Logger(service=SERVICE_NAME, child=True)


def finish(job: Job, outcome: Mapping[str, Any] | ConnectorError, settings: Settings, services: Services,
           mode: str = "async", deadline: Deadline | None = None) -> dict[str, Any] | None:
    """Report ``outcome`` (the landing's result, or the error that ended the job) unless it was reported
    before: the delivery report, or None (nothing configured, or a repeat). Never raises for a channel
    or the record: the landing stands whatever becomes of its report."""
    notifier = services.notifier
    if notifier is None or not notifier.enabled:
        return None
    store = services.job_store(settings)
    try:
        if store is not None and not store.claim_report(job):
            logger.info("outcome already reported; a repeat sends nothing new")
            return None
    except JobStoreError as error:  # a table failing is no reason to leave CI360 without the outcome
        logger.error("the outcome's report could not be claimed; reporting it anyway",
                     extra={"error": error.message})
    time_left = deadline.platform_ms_left() / 1000.0 if deadline else None
    report = report_outcome(job, outcome, settings, notifier, mode=mode, time_left_s=time_left)
    if store is not None:
        try:
            store.reported(job, report, landed=not isinstance(outcome, ConnectorError))
        except JobStoreError as error:
            logger.error("the outcome's report could not be recorded", extra={"error": error.message})
    return report
