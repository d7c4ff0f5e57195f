"""Failures the pipeline can report, each carrying a stable code for the caller.

Each class states, once, what its failure means to whoever reports it: ``response_status`` (the status
``handler.responses`` answers with; the core never builds a response) and ``transient`` (worth another
try later, as a queue redelivery). Where the answer depends on the failure (a timeout, S3's own status),
the class computes it; nobody else decides by checking types.
"""

from __future__ import annotations

from typing import Any

RETRYABLE_STATUSES = frozenset({429, 500, 502, 503, 504})  # a source's answers worth trying again
THROTTLING_CODES = frozenset({"SlowDown", "RequestTimeout", "Throttling", "ThrottlingException"})


class ConnectorError(Exception):
    """Base class: a failure with a machine-readable code and a message safe to show a caller."""

    code = "INTERNAL_ERROR"
    response_status = 500  # the HTTP status of the call's answer (handler.responses reads it)
    transient = False  # worth another try later (throttling, timeouts, 5xx), not a refusal

    def __init__(self, message: str, details: list[Any] | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.details = details or []


class ValidationError(ConnectorError):
    """The webhook payload is missing a field or has one of the wrong shape."""

    code = "VALIDATION_ERROR"
    response_status = 400


class ConfigurationError(ConnectorError):
    """The deployment is missing a setting it needs (for example the target bucket)."""

    code = "CONFIGURATION_ERROR"
    response_status = 500


class LayoutError(ConnectorError):
    """The metadata file could be fetched but does not describe a column layout."""

    code = "INVALID_METADATA"
    response_status = 422


class SourceError(ConnectorError):
    """A presigned source URL could not be fetched: refused, missing, expired or unreachable."""

    code = "SOURCE_ERROR"

    def __init__(self, message: str, file: str, upstream_status: int | None = None,
                 timed_out: bool = False) -> None:
        details: list[Any] = [{"file": file}]
        if upstream_status is not None:
            details[0]["upstreamStatus"] = upstream_status
        super().__init__(message, details)
        self.upstream_status = upstream_status
        self.timed_out = timed_out

    @property
    def response_status(self) -> int:  # type: ignore[override]
        return 504 if self.timed_out else 502

    @property
    def transient(self) -> bool:  # type: ignore[override]
        return self.timed_out or self.upstream_status is None or self.upstream_status in RETRYABLE_STATUSES


class SinkError(ConnectorError):
    """S3 refused or failed a write to the target; ``s3_code`` is S3's own error code."""

    code = "S3_ERROR"
    response_status = 502

    def __init__(self, message: str, s3_code: str, http_status: int | None = None) -> None:
        super().__init__(message, [{"s3ErrorCode": s3_code}])
        self.s3_code = s3_code
        self.http_status = http_status  # S3's own answer (None: S3 did not answer)

    @property
    def transient(self) -> bool:  # type: ignore[override]
        return self.http_status is None or self.http_status >= 500 or self.s3_code in THROTTLING_CODES


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
    response_status = 422


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
    response_status = 502

    def __init__(self, message: str, glue_code: str, http_status: int | None = None) -> None:
        super().__init__(message, [{"glueErrorCode": glue_code}])
        self.glue_code = glue_code
        self.http_status = http_status


class DeadlineError(ConnectorError):
    """The run was stopped before the platform's time limit could cut it off mid-write."""

    code = "DEADLINE_EXCEEDED"
    response_status = 504  # a refusal: the same job would run out of time again

    def __init__(self, message: str, progress: dict[str, Any]) -> None:
        super().__init__(message, [progress])


class QueueError(ConnectorError):
    """SQS refused or failed to take a job for asynchronous processing."""

    code = "QUEUE_ERROR"
    response_status = 502
    transient = True

    def __init__(self, message: str, aws_code: str) -> None:
        super().__init__(message, [{"sqsErrorCode": aws_code}])


class JobStoreError(ConnectorError):
    """DynamoDB refused or failed an operation on one of the two record tables.

    The same error for both: ``table`` is the table's role (``jobs``: the job records, ``idempotency``:
    the exactly-once records), ``aws_code`` DynamoDB's own error code. Retryable: nothing was landed
    without its record, and a retry answers with (or runs) the landing.
    """

    code = "JOB_STORE_ERROR"
    response_status = 502
    transient = True

    def __init__(self, message: str, aws_code: str, table: str = "jobs",
                 table_name: str | None = None) -> None:
        detail = {"table": table, "dynamodbErrorCode": aws_code}
        if table_name:
            detail["tableName"] = table_name
        super().__init__(message, [detail])


def is_transient(error: ConnectorError) -> bool:
    """Worth another try later (a queue redelivery): what the error says of itself."""
    return error.transient


class NotFoundError(ConnectorError):
    """What was asked for (a job record) does not exist."""

    code = "NOT_FOUND"
    response_status = 404


class ConflictError(ConnectorError):
    """The target key already holds an object and the job says not to overwrite it."""

    code = "CONFLICT"
    response_status = 409


class OrchestrationError(ConnectorError):
    """Step Functions refused or failed to start a fan-out's execution (``aws_code``: its error code)."""

    code = "STEP_FUNCTIONS_ERROR"
    response_status = 502
    transient = True

    def __init__(self, message: str, aws_code: str) -> None:
        super().__init__(message, [{"stepFunctionsErrorCode": aws_code}])
