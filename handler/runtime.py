"""What every entry point shares, and no more: logs, metrics, and AWS clients built once per container.

Light on purpose: ``GET /jobs`` loads this and a job record's reader, never the landing stack
(``handler.services`` builds what a landing needs).
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any

from aws_lambda_powertools import Metrics
from aws_lambda_powertools.metrics import MetricUnit, single_metric

from handler.logging import make_logger
from transforms import SERVICE_NAME
from transforms.aws import client

logger = make_logger()
NAMESPACE = "CI360Connector"
metrics = Metrics(namespace=NAMESPACE, service=SERVICE_NAME)


@lru_cache(maxsize=1)
def s3_client() -> Any:
    return client("s3")


@lru_cache(maxsize=4)
def aws_client(service: str) -> Any:
    return client(service)


def record_landing(result: dict[str, Any]) -> None:
    """Rows, bytes, duration and throughput of one landing, published now as one CloudWatch embedded
    metrics document (a refused call publishes only its failure: no empty document, no warning)."""
    metrics.add_dimension(name="format", value=str(result.get("format", "unknown")))
    metrics.add_metric(name="Rows", unit=MetricUnit.Count, value=result.get("rows", 0))
    metrics.add_metric(name="BytesRead", unit=MetricUnit.Bytes, value=result.get("bytesRead", 0))
    metrics.add_metric(name="BytesWritten", unit=MetricUnit.Bytes, value=result.get("bytesWritten", 0))
    seconds = float(result.get("seconds") or 0.0)
    metrics.add_metric(name="Duration", unit=MetricUnit.Seconds, value=seconds)
    if seconds > 0:
        metrics.add_metric(name="Throughput", unit=MetricUnit.BytesPerSecond,
                           value=result.get("bytesRead", 0) / seconds)
    metrics.flush_metrics()


def record_failure(cause: str) -> None:
    """Failures by cause (the error code) in a metric of their own, so each cause can be alarmed on."""
    with single_metric(name="Failures", unit=MetricUnit.Count, value=1, namespace=NAMESPACE,
                       default_dimensions={"service": SERVICE_NAME}) as metric:
        metric.add_dimension(name="cause", value=cause)


def record_delivery(report: dict[str, Any] | None) -> None:
    """Each outcome event by channel and whether it was delivered, so an undelivered one can be alarmed on."""
    for channel, delivery in (report or {}).items():
        with single_metric(name="OutcomeEvents", unit=MetricUnit.Count, value=1, namespace=NAMESPACE,
                           default_dimensions={"service": SERVICE_NAME}) as metric:
            metric.add_dimension(name="channel", value=channel)
            metric.add_dimension(name="delivered", value=str(bool(delivery.get("delivered"))).lower())
