"""The one place where outcomes become HTTP responses (SAS's connector guidelines, CONTRACT.md)."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

from transforms.errors import (
    CatalogError,
    ConfigurationError,
    ConflictError,
    ConnectorError,
    DeadlineError,
    JobStoreError,
    LayoutError,
    NotFoundError,
    QueueError,
    SinkError,
    SourceError,
    UnprocessableError,
    ValidationError,
)

_JSON = {"Content-Type": "application/json"}


def status_for(error: ConnectorError) -> int:
    if isinstance(error, ValidationError):
        return 400
    if isinstance(error, NotFoundError):
        return 404
    if isinstance(error, ConflictError):
        return 409
    if isinstance(error, LayoutError | UnprocessableError):
        return 422
    if isinstance(error, SourceError):
        return 504 if error.timed_out else 502
    if isinstance(error, DeadlineError):
        return 504
    if isinstance(error, SinkError | CatalogError | QueueError | JobStoreError):
        return 502
    if isinstance(error, ConfigurationError):
        return 500
    return 500


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
