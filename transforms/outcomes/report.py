"""The one entry for a final outcome: tell CI360 and EventBridge, and say what became of each.

``report_outcome`` is called once per final outcome (``transforms.jobs.finish`` makes it once) with the
job, its result or its error, and the settings; it returns the delivery report that goes into the job's
result and record: ``{"ci360": {...}, "eventBridge": {...}}``, each channel only when configured
(``ci360_events_url`` set; ``event_bus_name`` resolved), each ``{"delivered", "attempts", "status",
"error"?, "eventId"?}``. It never raises for a channel that failed: the landing stands.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from aws_lambda_powertools import Logger

from transforms import SERVICE_NAME
from transforms.errors import ConnectorError
from transforms.outcomes import ci360_event, eventbridge
from transforms.outcomes.ci360_event import Gateway
from transforms.outcomes.client_secret import ClientSecret
from transforms.outcomes.final import Final
from transforms.settings import Settings

logger = Logger(service=SERVICE_NAME, child=True)

# EventBridge on the webhook's path, which has ~3 s left at worst (its landing stops 3 s before API
# Gateway's limit): a short wait and one retry at most, never the SDK's 60 s. PutEvents answers in tens of
# milliseconds.
EVENTS_CLIENT_CONFIG = {"connect_timeout": 1, "read_timeout": 2,
                        "retries": {"mode": "standard", "total_max_attempts": 2}}
ANSWER_RESERVE_S = 1.0  # kept from the caller's time left to answer after the events


@dataclass
class Notifier:
    """The channels of one deployment, built once per container: CI360's gateway and EventBridge."""

    gateway: Gateway | None = None
    events: Any = None  # an EventBridge client
    bus: str | None = None

    @property
    def enabled(self) -> bool:
        return self.gateway is not None or (self.events is not None and bool(self.bus))

    @classmethod
    def from_settings(cls, settings: Settings, client: Callable[..., Any]) -> Notifier:
        """``client(service, **config)`` builds an AWS client (``transforms.aws.client``); none is built
        for a channel that is off, and Secrets Manager's only when the secret is first read."""
        gateway = None
        if settings.ci360_events_url:
            secret = ClientSecret(settings.ci360_client_secret_arn, settings.ci360_client_secret,
                                  lambda: client("secretsmanager"))
            gateway = Gateway(settings.ci360_events_url, str(settings.ci360_tenant_id), secret,
                              settings.ci360_events_timeout_s)
        events = client("events", **EVENTS_CLIENT_CONFIG) if settings.event_bus_name else None
        return cls(gateway, events, settings.event_bus_name)


def report_outcome(job: Any, outcome: Mapping[str, Any] | ConnectorError, settings: Settings,
                   notifier: Notifier, *, mode: str = "sync",
                   time_left_s: float | None = None) -> dict[str, Any]:
    """Tell both channels about one final outcome; the delivery report (empty when both are off).

    ``time_left_s``: what the caller has left before it must answer (a webhook before API Gateway's
    limit); CI360's delivery is bounded by it as well as by ``ci360_events_timeout_s``."""
    final = Final.of(job, outcome, mode)
    report: dict[str, Any] = {}
    started = time.monotonic()
    if notifier.events is not None and notifier.bus:
        delivery = eventbridge.put(notifier.events, eventbridge.entry(final, notifier.bus))
        report["eventBridge"] = delivery.to_json()
        _log("EventBridge", final, delivery.to_json())
    if notifier.gateway is not None:
        left = None if time_left_s is None else time_left_s - (time.monotonic() - started) - ANSWER_RESERVE_S
        delivery = notifier.gateway.send(ci360_event.event_body(final, settings), left)
        report["ci360"] = delivery.to_json()
        _log("CI360", final, delivery.to_json())
    return report


def _log(channel: str, final: Final, delivery: dict[str, Any]) -> None:
    fields = {"channel": channel, "outcome": final.status,
              **{f"delivery_{name}": value for name, value in delivery.items()}}
    if delivery["delivered"]:
        logger.info(f"outcome event delivered to {channel}", extra=fields)
    else:
        logger.warning(f"outcome event NOT delivered to {channel}; the landing stands", extra=fields)
