"""Landing a job exactly once, and keeping its job record up to date.

The same webhook delivered twice, or an SQS message delivered twice, must write the object once:
aws-lambda-powertools Idempotency (DynamoDB) keys each landing on occurrence, task and target key,
so a repeat returns the first landing's result without running again. A failed landing leaves no
idempotency record, so a retry does run again.
"""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.utilities.idempotency import (
    DynamoDBPersistenceLayer,
    IdempotencyConfig,
    idempotent_function,
)
from aws_lambda_powertools.utilities.idempotency.exceptions import IdempotencyAlreadyInProgressError

from transforms.errors import ConnectorError
from transforms.job import Job
from transforms.pipeline import run
from transforms.progress import Deadline
from transforms.services import Services
from transforms.settings import Settings


class AlreadyRunning(Exception):
    """Another delivery of the same job is landing it right now."""


def landing_identity(job: Job) -> dict[str, str]:
    """Occurrence, task and target as CI360 named it: the key *before* templates are rendered, so a
    repeated call whose ``{timestamp}`` renders differently is still the same landing."""
    target = job.send_parameters.get("s3_filename", job.key)
    return {"occurrenceId": job.occurrence_id, "taskId": job.task_id, "bucket": job.bucket, "target": target}


def land(job: Job, settings: Settings, services: Services, mode: str, deadline: Deadline | None = None,
         lambda_context: Any = None) -> dict[str, Any]:
    """Run the job (once), record its outcome, and return the result body."""
    store = services.job_store(settings)
    if store:
        store.running(job, mode)

    def once(identity: dict[str, str]) -> dict[str, Any]:
        return run(job, settings, services.s3, services.http, services.glue, deadline).to_json()

    try:
        if settings.idempotency_table and services.dynamodb is not None:
            config = IdempotencyConfig(expires_after_seconds=settings.idempotency_hours * 3600,
                                       lambda_context=lambda_context)
            persistence = DynamoDBPersistenceLayer(settings.idempotency_table, boto3_client=services.dynamodb)
            guarded = idempotent_function(once, data_keyword_argument="identity",
                                          persistence_store=persistence, config=config)
            result = guarded(identity=landing_identity(job))
        else:
            result = once(landing_identity(job))
    except IdempotencyAlreadyInProgressError:
        raise AlreadyRunning(job.occurrence_id) from None
    except ConnectorError as error:
        if store:
            store.failed(job, error)
        raise
    except Exception:
        if store:
            store.failed(job, ConnectorError("an unexpected error occurred; see the function's logs"))
        raise
    if store:
        store.succeeded(job, result)
    return result
