"""Lambda entry point for ``GET /jobs/{occurrenceId}`` (same API key as the webhook)."""

from __future__ import annotations

from typing import Any

from handler.events import request_id
from handler.responses import error_response, respond, unexpected_response
from handler.runtime import logger, services
from transforms.errors import ConfigurationError, ConnectorError, NotFoundError, ValidationError
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
        store = services(settings).job_store(settings)
        if store is None:
            raise ConfigurationError("jobs_table (the job records table) is not set")
        record = store.get(occurrence_id)
        if record is None:
            raise NotFoundError(f"no job for occurrence {occurrence_id!r}", [{"occurrenceId": occurrence_id}])
        return respond(200, record)
    except ConnectorError as error:
        return error_response(error, rid)
    except Exception:
        logger.exception("unexpected failure")
        return unexpected_response(rid)
