"""Lambda entry point for CI360's bulk webhook (API Gateway REST, POST /upload)."""

from __future__ import annotations

from functools import lru_cache
from typing import Any

import boto3
from botocore.config import Config

from handler.events import request_id, webhook_payload
from handler.logging import make_logger
from handler.responses import error_response, respond, unexpected_response
from transforms.errors import ConnectorError
from transforms.job import parse_job
from transforms.pipeline import run
from transforms.settings import Settings
from transforms.source import HttpSource

logger = make_logger()


@lru_cache(maxsize=1)
def s3_client() -> Any:
    """Created once per container with the standard configuration chain (AWS_ENDPOINT_URL_S3 included).

    SigV4 for the optional result link; a connection pool large enough for the concurrent part uploads.
    """
    return boto3.client("s3", config=Config(signature_version="s3v4", max_pool_connections=32,
                                            retries={"mode": "standard"}))


@lru_cache(maxsize=1)
def glue_client() -> Any:
    return boto3.client("glue", config=Config(retries={"mode": "standard"}))


@lru_cache(maxsize=4)
def http_source(connect_timeout: float, read_timeout: float, resume_attempts: int) -> HttpSource:
    return HttpSource(connect_timeout, read_timeout, resume_attempts)


@logger.inject_lambda_context(log_event=False, clear_state=True)
def handle(event: dict[str, Any], context: Any) -> dict[str, Any]:
    rid = request_id(event, context)
    try:
        settings = Settings.from_env()
        job = parse_job(webhook_payload(event), settings)
        logger.set_correlation_id(job.occurrence_id)
        logger.append_keys(task_id=job.task_id, tenant=job.tenant)
        http = http_source(settings.connect_timeout, settings.read_timeout, settings.resume_attempts)
        glue = glue_client() if settings.glue_database else None
        result = run(job, settings, s3_client(), http, glue)
        return respond(200, result.to_json())
    except ConnectorError as error:
        logger.warning("job failed", extra={"error_code": error.code, "error_message": error.message})
        return error_response(error, rid)
    except Exception:
        logger.exception("unexpected failure")
        return unexpected_response(rid)
