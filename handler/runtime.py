"""What every entry point shares: settings, AWS clients built once per container, logs and metrics."""

from __future__ import annotations

import warnings
from functools import lru_cache
from typing import Any

import boto3
from aws_lambda_powertools import Metrics
from aws_lambda_powertools.metrics import MetricUnit, single_metric
from botocore.config import Config

from handler.logging import make_logger
from transforms import SERVICE_NAME
from transforms.services import Services
from transforms.settings import Settings
from transforms.source import HttpSource

logger = make_logger()
# A refused request publishes no landing metrics (its failure metric is a single metric of its own).
warnings.filterwarnings("ignore", message="No application metrics to publish")
NAMESPACE = "CI360Connector"
metrics = Metrics(namespace=NAMESPACE, service=SERVICE_NAME)

_STANDARD = {"retries": {"mode": "standard"}}


@lru_cache(maxsize=1)
def s3_client() -> Any:
    """The standard configuration chain (AWS_ENDPOINT_URL_S3 included); SigV4 for the optional result
    link; a connection pool large enough for the concurrent part uploads."""
    return boto3.client("s3", config=Config(signature_version="s3v4", max_pool_connections=32, **_STANDARD))


@lru_cache(maxsize=4)
def _client(service: str) -> Any:
    return boto3.client(service, config=Config(**_STANDARD))


@lru_cache(maxsize=4)
def _http(connect_timeout: float, read_timeout: float, resume_attempts: int) -> HttpSource:
    return HttpSource(connect_timeout, read_timeout, resume_attempts)


def services(settings: Settings) -> Services:
    """Only the clients this deployment's settings call for (each costs cold-start time)."""
    return Services(
        s3=s3_client(),
        http=_http(settings.connect_timeout, settings.read_timeout, settings.resume_attempts),
        glue=_client("glue") if settings.glue_database else None,
        sqs=_client("sqs") if settings.jobs_queue else None,
        dynamodb=_client("dynamodb") if settings.jobs_table or settings.idempotency_table else None,
    )


def record_landing(result: dict[str, Any]) -> None:
    """Rows, bytes, duration and throughput of one landing, as CloudWatch embedded metrics."""
    metrics.add_dimension(name="format", value=str(result.get("format", "unknown")))
    metrics.add_metric(name="Rows", unit=MetricUnit.Count, value=result.get("rows", 0))
    metrics.add_metric(name="BytesRead", unit=MetricUnit.Bytes, value=result.get("bytesRead", 0))
    metrics.add_metric(name="BytesWritten", unit=MetricUnit.Bytes, value=result.get("bytesWritten", 0))
    seconds = float(result.get("seconds") or 0.0)
    metrics.add_metric(name="Duration", unit=MetricUnit.Seconds, value=seconds)
    if seconds > 0:
        metrics.add_metric(name="Throughput", unit=MetricUnit.BytesPerSecond,
                           value=result.get("bytesRead", 0) / seconds)


def record_failure(cause: str) -> None:
    """Failures by cause (the error code) in a metric of their own, so each cause can be alarmed on."""
    with single_metric(name="Failures", unit=MetricUnit.Count, value=1, namespace=NAMESPACE,
                       default_dimensions={"service": SERVICE_NAME}) as metric:
        metric.add_dimension(name="cause", value=cause)
