"""The services a landing talks to, built once per container from the deployment's settings."""

from __future__ import annotations

from functools import lru_cache

from handler.runtime import aws_client, s3_client
from transforms.jobs.services import Services
from transforms.settings import Settings
from transforms.sources.http import HttpSource


@lru_cache(maxsize=4)
def _http(connect_timeout: float, read_timeout: float, resume_attempts: int) -> HttpSource:
    return HttpSource(connect_timeout, read_timeout, resume_attempts)


def services(settings: Settings) -> Services:
    """Only the clients this deployment's settings call for (each costs cold-start time)."""
    return Services(
        s3=s3_client(),
        http=_http(settings.connect_timeout, settings.read_timeout, settings.resume_attempts),
        glue=aws_client("glue") if settings.glue_database else None,
        sqs=aws_client("sqs") if settings.jobs_queue else None,
        dynamodb=aws_client("dynamodb") if settings.jobs_table or settings.idempotency_table else None,
    )
