"""The fan-out's own failures, named so that the state machine can tell them apart (a Lambda error's
``errorType`` is the exception's class name: Retry and Catch match on it)."""

from __future__ import annotations

from transforms.errors import ConnectorError, SourceError


class SourceChanged(SourceError):
    """The data file's ETag no longer matches the one the plan read: another version was staged while
    the job ran. Never retried: every range must read the same bytes, so the job fails (and is abandoned)."""

    code = "SOURCE_CHANGED"

    def __init__(self, message: str) -> None:
        super().__init__(message, "data", upstream_status=412)

    @property
    def response_status(self) -> int:  # type: ignore[override]
        return 412

    @property
    def transient(self) -> bool:  # type: ignore[override]
        return False


class RangesIncomplete(ConnectorError):
    """The finalizer found a range without its manifest, or one still to be redone: the state machine
    skipped a step. Nothing is assembled from an incomplete or unproven set of ranges."""

    code = "FANOUT_INCOMPLETE"
    response_status = 500
