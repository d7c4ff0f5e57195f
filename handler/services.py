"""The services a landing talks to, built once per container from the deployment's settings."""

from __future__ import annotations

from handler.runtime import aws_client, s3_client
from transforms.aws import client
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


def services(settings: Settings) -> Services:
    """Only the clients this deployment's settings call for (each costs cold-start time)."""
    return Services(
        s3=s3_client(),
        http=_http(settings),
        glue=aws_client("glue") if settings.glue_database else None,
        sqs=aws_client("sqs") if settings.jobs_queue else None,
        dynamodb=aws_client("dynamodb") if settings.jobs_table or settings.idempotency_table else None,
        notifier=notifier(settings),
    )
