"""Lambda entry point for ``GET /jobs/{occurrenceId}`` (same API key as the webhook).

It reads one job record: none of the landing stack (source, formats' writers, pipeline, pyarrow) is
loaded, which keeps its cold start short (tests/integration/test_layers.py, the import contracts in
pyproject.toml).
"""

from __future__ import annotations

from typing import Any

from handler.events import request_id
from handler.responses import error_response, respond, unexpected_response
from handler.runtime import aws_client, logger
from transforms.errors import ConfigurationError, ConnectorError, NotFoundError, ValidationError
from transforms.jobs.store import JobStore
from transforms.settings import Settings


@logger.inject_lambda_context(log_event=False, clear_state=True)
def handle(event: dict[str, Any], context: Any) -> dict[str, Any]:
    rid = request_id(event, context)
    try:
        occurrence_id = ((event.get("pathParameters") or {}).get("occurrenceId") or "").strip()
        if not occurrence_id or len(occurrence_id) > 256:
            raise ValidationError("the path must name a job: /jobs/{occurrenceId}",
                                  [{"field": "occurrenceId"}])
        settings = Settings.from_env()
        if not settings.jobs_table:
            raise ConfigurationError("jobs_table (the job records table) is not set")
        record = JobStore(aws_client("dynamodb"), settings.jobs_table).get(occurrence_id)
        if record is None:
            raise NotFoundError(f"no job for occurrence {occurrence_id!r}", [{"occurrenceId": occurrence_id}])
        return respond(200, record)
    except ConnectorError as error:
        return error_response(error, rid)
    except Exception:
        logger.exception("unexpected failure")
        return unexpected_response(rid)
