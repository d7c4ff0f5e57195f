"""The one place where outcomes become HTTP responses (SAS's connector guidelines, CONTRACT.md)."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from transforms.errors import ConnectorError
from transforms.jobs.outcome import Outcome

if TYPE_CHECKING:  # GET /jobs loads this module and none of the job's parsing
    from transforms.ci360.payload import Job

_JSON = {"Content-Type": "application/json"}


def status_for(error: ConnectorError) -> int:
    """The error's own statement of its status (``transforms.errors``): no type checks here."""
    return error.response_status


def job_path(occurrence_id: str) -> str:
    """Where ``GET /jobs/{occurrenceId}`` (handler.jobs, serverless.yml) answers about a job."""
    return f"/jobs/{occurrence_id}"


def outcome_response(job: Job, outcome: Outcome) -> dict[str, Any]:
    """200 with the landing's result once it landed; 202 with where to ask while queued or running."""
    if outcome.landed:
        return respond(200, outcome.result or {})
    return respond(202, {"status": outcome.status, "jobId": job.occurrence_id,
                         "occurrenceId": job.occurrence_id, "mode": outcome.mode, "bucket": job.bucket,
                         "key": job.key, "statusPath": job_path(job.occurrence_id)})


def respond(status: int, body: dict[str, Any]) -> dict[str, Any]:
    return {"statusCode": status, "headers": dict(_JSON), "body": json.dumps(body)}


def error_response(error: ConnectorError, request_id: str | None) -> dict[str, Any]:
    """SAS-style error body; the message is ours, never an exception's text that could carry a URL."""
    body = {
        "error": {
            "code": error.code,
            "message": error.message,
            "details": error.details,
            "timestamp": datetime.now(UTC).isoformat(timespec="milliseconds"),
            "requestId": request_id,
        }
    }
    return respond(status_for(error), body)


def unexpected_response(request_id: str | None) -> dict[str, Any]:
    return error_response(ConnectorError("an unexpected error occurred; see the function's logs"),
                          request_id)
