"""Failures the pipeline can report, each carrying a stable code for the caller.

The pipeline raises these; exactly one place (``handler.responses``) turns them into HTTP statuses, so
the core never needs to know it runs behind API Gateway.
"""

from __future__ import annotations

from typing import Any


class ConnectorError(Exception):
    """Base class: a failure with a machine-readable code and a message safe to show a caller."""

    code = "INTERNAL_ERROR"

    def __init__(self, message: str, details: list[Any] | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.details = details or []


class ValidationError(ConnectorError):
    """The webhook payload is missing a field or has one of the wrong shape."""

    code = "VALIDATION_ERROR"


class ConfigurationError(ConnectorError):
    """The deployment is missing a setting it needs (for example the target bucket)."""

    code = "CONFIGURATION_ERROR"


class LayoutError(ConnectorError):
    """The metadata file could be fetched but does not describe a column layout."""

    code = "INVALID_METADATA"


class SourceError(ConnectorError):
    """A presigned source URL could not be fetched: refused, missing, expired or unreachable."""

    code = "SOURCE_ERROR"

    def __init__(self, message: str, file: str, upstream_status: int | None = None,
                 timed_out: bool = False) -> None:
        details: list[Any] = [{"file": file}]
        if upstream_status is not None:
            details[0]["upstreamStatus"] = upstream_status
        super().__init__(message, details)
        self.file = file
        self.upstream_status = upstream_status
        self.timed_out = timed_out


class SinkError(ConnectorError):
    """S3 refused or failed a write to the target; ``s3_code`` is S3's own error code."""

    code = "S3_ERROR"

    def __init__(self, message: str, s3_code: str, http_status: int | None = None) -> None:
        super().__init__(message, [{"s3ErrorCode": s3_code}])
        self.s3_code = s3_code
        self.http_status = http_status


class IntegrityError(SinkError):
    """S3 stored the object with a checksum other than the one of the bytes sent (or of another type).

    Raised only after the object was removed again: nothing unverifiable stays at the key.
    """

    code = "INTEGRITY_ERROR"

    def __init__(self, message: str) -> None:
        super().__init__(message, "ChecksumMismatch")


class UnprocessableError(ConnectorError):
    """Well-formed, but it does not fit what it refers to (an override naming no column, ...)."""

    code = "UNPROCESSABLE"


class BadValueError(UnprocessableError):
    """A value in the data file cannot be read as its column's type (and the policy is to fail)."""

    code = "BAD_VALUE"

    def __init__(self, row: int, column: str, value: str, expected: str) -> None:
        shown = value if len(value) <= 100 else value[:100] + "..."
        super().__init__(f"row {row}, column {column!r}: {shown!r} is not a valid {expected}",
                         [{"row": row, "column": column, "value": shown, "expected": expected}])
        self.row = row
        self.column = column


class CatalogError(ConnectorError):
    """The Glue Data Catalog refused or failed a table or partition call; ``glue_code`` is Glue's own."""

    code = "GLUE_ERROR"

    def __init__(self, message: str, glue_code: str, http_status: int | None = None) -> None:
        super().__init__(message, [{"glueErrorCode": glue_code}])
        self.glue_code = glue_code
        self.http_status = http_status


class DeadlineError(ConnectorError):
    """The run was stopped before the platform's time limit could cut it off mid-write."""

    code = "DEADLINE_EXCEEDED"

    def __init__(self, message: str, progress: dict[str, Any]) -> None:
        super().__init__(message, [progress])


class QueueError(ConnectorError):
    """SQS refused or failed to take a job for asynchronous processing."""

    code = "QUEUE_ERROR"

    def __init__(self, message: str, aws_code: str) -> None:
        super().__init__(message, [{"sqsErrorCode": aws_code}])


class JobStoreError(ConnectorError):
    """DynamoDB refused or failed an operation on one of the two record tables.

    The same error for both: ``table`` is the table's role (``jobs``: the job records, ``idempotency``:
    the exactly-once records), ``aws_code`` DynamoDB's own error code. Retryable: nothing was landed
    without its record, and a retry answers with (or runs) the landing.
    """

    code = "JOB_STORE_ERROR"

    def __init__(self, message: str, aws_code: str, table: str = "jobs",
                 table_name: str | None = None) -> None:
        detail = {"table": table, "dynamodbErrorCode": aws_code}
        if table_name:
            detail["tableName"] = table_name
        super().__init__(message, [detail])
        self.aws_code = aws_code
        self.table = table


def aws_error_code(exc: Exception) -> str:
    """The AWS error code of a botocore failure, or the exception's type when nothing answered."""
    response = getattr(exc, "response", None)
    if isinstance(response, dict):
        return str(response.get("Error", {}).get("Code") or "Unknown")
    return type(exc).__name__


def is_transient(error: ConnectorError) -> bool:
    """Worth another try later (a queue redelivery): throttling, timeouts, 5xx; not refusals."""
    if isinstance(error, SourceError):
        return error.timed_out or error.upstream_status is None or error.upstream_status in (429, 500, 502,
                                                                                            503, 504)
    if isinstance(error, SinkError):
        return error.http_status is None or error.http_status >= 500 or error.s3_code in (
            "SlowDown", "RequestTimeout", "Throttling", "ThrottlingException")
    return isinstance(error, QueueError | JobStoreError)


class NotFoundError(ConnectorError):
    """What was asked for (a job record) does not exist."""

    code = "NOT_FOUND"


class ConflictError(ConnectorError):
    """The target key already holds an object and the job says not to overwrite it."""

    code = "CONFLICT"
