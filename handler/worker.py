"""Lambda entry point for queued jobs (SQS, batch size 1): the same landing as the webhook's.

A failure worth retrying (throttling, timeouts, 5xx, either record table failing) is raised, so SQS
delivers the message again and, after ``jobs_max_receives`` receives (the queue's maxReceiveCount),
moves it to the dead-letter queue. A refusal (bad data, expired URL, deadline) is recorded on the job
and the message is consumed: retrying cannot help. With one message per batch, raising is the whole
protocol: the event source does not enable ReportBatchItemFailures and nothing is returned.

The outcome is reported (CI360, EventBridge) when it is final: a landing, a refusal, or a failure on
the last receive.
"""

from __future__ import annotations

from typing import Any

from handler.outcomes import tell
from handler.runtime import logger, record_failure, record_landing
from handler.services import services
from transforms.errors import ConnectorError, is_transient
from transforms.jobs.dispatch import job_from_message
from transforms.jobs.landing import AlreadyRunning, land
from transforms.progress import Deadline
from transforms.settings import Settings


@logger.inject_lambda_context(log_event=False, clear_state=True)
def handle(event: dict[str, Any], context: Any) -> None:
    settings = Settings.from_env()
    for record in event.get("Records", []):
        job = job_from_message(record["body"])
        receives = _receive_count(record)
        last = receives >= settings.jobs_max_receives
        logger.set_correlation_id(job.occurrence_id)
        logger.append_keys(task_id=job.task_id, tenant=job.tenant, receive_count=receives)
        deadline = Deadline(context.get_remaining_time_in_millis, margin_s=settings.deadline_margin_s)
        try:
            result = land(job, settings, services(settings), "async", deadline)
        except AlreadyRunning:
            logger.info("another delivery of this job is running; retrying later")
            raise
        except ConnectorError as error:
            record_failure(error.code)
            if is_transient(error):
                logger.warning("job failed, will be retried" if not last else
                               "job failed on its last receive; SQS moves it to the dead-letter queue",
                               extra={"error_code": error.code, "error_message": error.message})
                if last:
                    tell(job, error, settings, "async", deadline)
                raise
            logger.error("job failed", extra={"error_code": error.code, "error_message": error.message})
            tell(job, error, settings, "async", deadline)
            continue
        except Exception:
            if last:
                tell(job, ConnectorError("an unexpected error occurred; see the function's logs"),
                     settings, "async", deadline)
            raise
        record_landing(result)
        tell(job, result, settings, "async", deadline)



def _receive_count(record: dict[str, Any]) -> int:
    return int(record.get("attributes", {}).get("ApproximateReceiveCount", 1))
