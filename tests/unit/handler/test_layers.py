"""The layers point one way: what each entry point loads, what the core hands back, and who decides a
status. (The static side, every import of every module, is the import contract in pyproject.toml, run
by `make test` as `lint-imports`.)"""

from __future__ import annotations

import json
from types import SimpleNamespace

import pytest

from handler.responses import outcome_response, status_for
from transforms.errors import (
    BadValueError,
    CatalogError,
    ConfigurationError,
    ConflictError,
    ConnectorError,
    DeadlineError,
    JobStoreError,
    LayoutError,
    NotFoundError,
    OrchestrationError,
    QueueError,
    SinkError,
    SourceError,
    UnprocessableError,
    ValidationError,
    is_transient,
)
from transforms.jobs.outcome import Outcome

# -- the status and retry decision, stated on each error --------------------------------------------

CASES: list[tuple[ConnectorError, int, bool]] = [
    (ValidationError("x"), 400, False),
    (NotFoundError("x"), 404, False),
    (ConflictError("x"), 409, False),
    (LayoutError("x"), 422, False),
    (UnprocessableError("x"), 422, False),
    (BadValueError(1, "c", "v", "int"), 422, False),
    (SourceError("x", "data", 403), 502, False),  # expired or refused: retrying cannot help
    (SourceError("x", "data", 404), 502, False),
    (SourceError("x", "data", 503), 502, True),
    (SourceError("x", "data", 429), 502, True),
    (SourceError("x", "data"), 502, True),  # no answer at all
    (SourceError("x", "data", timed_out=True), 504, True),
    (DeadlineError("x", {}), 504, False),
    (SinkError("x", "AccessDenied", 403), 502, False),
    (SinkError("x", "SlowDown", 503), 502, True),
    (SinkError("x", "RequestTimeout", 400), 502, True),
    (SinkError("x", "InternalError", 500), 502, True),
    (SinkError("x", "EndpointConnectionError"), 502, True),
    (CatalogError("x", "AccessDeniedException", 400), 502, False),
    (QueueError("x", "AWS.SimpleQueueService.NonExistentQueue"), 502, True),
    (OrchestrationError("x", "ExecutionLimitExceeded"), 502, True),
    (JobStoreError("x", "ThrottlingException"), 502, True),
    (ConfigurationError("x"), 500, False),
    (ConnectorError("x"), 500, False),
]


@pytest.mark.parametrize(("error", "status", "transient"), CASES, ids=lambda v: getattr(v, "code", repr(v)))
def test_each_error_states_its_status_and_whether_a_retry_can_help(error: ConnectorError, status: int,
                                                                  transient: bool) -> None:
    assert status_for(error) == error.response_status == status
    assert is_transient(error) is error.transient is transient


# -- outcomes: the core's value, the handler's response ---------------------------------------------

JOB = SimpleNamespace(occurrence_id="occ-1", bucket="target", key="a/b.csv")


def test_a_landed_outcome_is_a_200_with_the_result() -> None:
    response = outcome_response(JOB, Outcome("succeeded", "sync", {"key": "a/b.csv", "rows": 4}))
    assert response["statusCode"] == 200 and json.loads(response["body"]) == {"key": "a/b.csv", "rows": 4}


@pytest.mark.parametrize("status", ["accepted", "running"])
def test_a_pending_outcome_is_a_202_saying_where_to_ask(status: str) -> None:
    response = outcome_response(JOB, Outcome(status, "async"))  # type: ignore[arg-type]
    assert response["statusCode"] == 202
    assert json.loads(response["body"]) == {"status": status, "jobId": "occ-1", "occurrenceId": "occ-1",
                                            "mode": "async", "bucket": "target", "key": "a/b.csv",
                                            "statusPath": "/jobs/occ-1"}
