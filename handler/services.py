"""The services a landing talks to, built once per container from the deployment's settings."""

from __future__ import annotations

from handler.runtime import aws_client, s3_client
from transforms.jobs.services import Services
from transforms.settings import Settings
from transforms.sources.http import HttpSource

_HTTP: dict[tuple[float, float, int], HttpSource] = {}


def _http(settings: Settings) -> HttpSource:
    """One connection pool per container (per set of timeouts, should the settings change)."""
    timeouts = (settings.connect_timeout, settings.read_timeout, settings.resume_attempts)
    if timeouts not in _HTTP:
        _HTTP[timeouts] = HttpSource.from_settings(settings)
    return _HTTP[timeouts]


def services(settings: Settings) -> Services:
    """Only the clients this deployment's settings call for (each costs cold-start time)."""
    return Services(
        s3=s3_client(),
        http=_http(settings),
        glue=aws_client("glue") if settings.glue_database else None,
        sqs=aws_client("sqs") if settings.jobs_queue else None,
        dynamodb=aws_client("dynamodb") if settings.jobs_table or settings.idempotency_table else None,
        stepfunctions=aws_client("stepfunctions") if settings.fanout_state_machine else None,
    )
