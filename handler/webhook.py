"""Lambda entry point for CI360's bulk webhook (API Gateway REST, POST /upload)."""

from __future__ import annotations

from typing import Any

from handler.events import request_id
from handler.outcomes import tell
from handler.responses import error_response, outcome_response, unexpected_response
from handler.runtime import logger, record_failure, record_landing
from handler.services import services
from transforms.ci360.delivery import webhook_payload
from transforms.ci360.payload import Job, parse_job
from transforms.errors import ConnectorError
from transforms.jobs.dispatch import handle_job
from transforms.jobs.outcome import Outcome
from transforms.progress import Deadline
from transforms.settings import Settings

SYNC_MARGIN_S = 3.0  # API Gateway answers at ~29 s whatever the function does; abort just before


@logger.inject_lambda_context(log_event=False, clear_state=True)
def handle(event: dict[str, Any], context: Any) -> dict[str, Any]:
    rid = request_id(event, context)
    job: Job | None = None  # known once the payload is understood: from then on, every answer is reported
    deadline: Deadline | None = None
    try:
        settings = Settings.from_env()
        if settings.local and not (settings.jobs_table or settings.idempotency_table or settings.jobs_queue):
            logger.info("local invoke: no job queue or record tables named, so none are used (README)")
        job = parse_job(webhook_payload(event), settings)
        logger.set_correlation_id(job.occurrence_id)
        logger.append_keys(task_id=job.task_id, tenant=job.tenant)
        deadline = Deadline(context.get_remaining_time_in_millis, margin_s=SYNC_MARGIN_S) if context else None
        outcome = handle_job(job, settings, services(settings), deadline)
        if outcome.landed:
            record_landing(outcome.result or {})
            report = tell(job, outcome.result or {}, settings, outcome.mode, deadline)
            if report:
                outcome = Outcome(outcome.status, outcome.mode, {**(outcome.result or {}), "events": report})
        return outcome_response(job, outcome)
    except ConnectorError as error:
        logger.warning("job failed", extra={"error_code": error.code, "error_message": error.message})
        record_failure(error.code)
        if job is not None:
            tell(job, error, settings, "sync", deadline)
        return error_response(error, rid)
    except Exception:
        logger.exception("unexpected failure")
        record_failure("INTERNAL_ERROR")
        if job is not None:
            tell(job, ConnectorError("an unexpected error occurred; see the function's logs"), settings,
                    "sync", deadline)
        return unexpected_response(rid)
