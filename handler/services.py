"""The services a landing talks to, built once per container from the deployment's settings."""

from __future__ import annotations

from typing import Any

from handler.runtime import aws_client, logger, s3_client
from transforms.aws import SDK_ERRORS, client
from transforms.ci360.payload import Job
from transforms.jobs.services import Services
from transforms.outcomes.report import Notifier
from transforms.settings import Settings
from transforms.sources.http import HttpSource

_HTTP: dict[tuple[float, float, int], HttpSource] = {}
_NOTIFIERS: dict[tuple[object, ...], Notifier] = {}


def _http(settings: Settings) -> HttpSource:
    """One connection pool per container (per set of timeouts, should the settings change)."""
    timeouts = (settings.connect_timeout, settings.read_timeout, settings.resume_attempts)
    if timeouts not in _HTTP:
        _HTTP[timeouts] = HttpSource.from_settings(settings)
    return _HTTP[timeouts]


def notifier(settings: Settings) -> Notifier:
    """CI360's gateway (its secret read and token signed once per container) and EventBridge's client."""
    key = (settings.ci360_events_url, settings.ci360_tenant_id, settings.ci360_client_secret_arn,
           settings.ci360_client_secret, settings.ci360_events_timeout_s, settings.event_bus_name)
    if key not in _NOTIFIERS:
        _NOTIFIERS[key] = Notifier.from_settings(settings, client)
    return _NOTIFIERS[key]


class StagedJobs:
    """The fan-out's stored job (transforms.fanout.stored_job), handed to the dispatcher, which sits below
    it (pyproject.toml's layers); imported when a fan-out starts, not at every cold start."""

    def __init__(self, s3: Any) -> None:
        self._s3 = s3

    def store(self, job: Job, settings: Settings) -> dict[str, Any]:
        from transforms.fanout.stored_job import store_job

        return store_job(self._s3, job, settings)

    def discard(self, job: Job, settings: Settings) -> None:
        from transforms.fanout.stored_job import identifiers

        try:
            self._s3.delete_object(Bucket=job.bucket, Key=identifiers(job)["jobObject"])
        except SDK_ERRORS:
            logger.exception("the stored job of a fan-out that did not start could not be removed")


def services(settings: Settings) -> Services:
    """Only the clients this deployment's settings call for (each costs cold-start time)."""
    return Services(
        s3=s3_client(),
        http=_http(settings),
        glue=aws_client("glue") if settings.glue_database else None,
        sqs=aws_client("sqs") if settings.jobs_queue else None,
        dynamodb=aws_client("dynamodb") if settings.jobs_table or settings.idempotency_table else None,
        notifier=notifier(settings),
        stepfunctions=aws_client("stepfunctions") if settings.fanout_state_machine else None,
        fanout_jobs=StagedJobs(s3_client()) if settings.fanout_state_machine else None,
        sts=aws_client("sts") if settings.fanout_state_machine else None,
    )
