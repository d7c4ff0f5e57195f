"""Lambda entry points of the fan-out state machine (serverless.yml, ``FanoutStateMachine``).

Each is thin: it reads the state Step Functions hands it, calls ``transforms.fanout`` and returns JSON.
What it raises is the whole protocol with the state machine, which matches a Lambda failure by its
``errorType``, the exception's class name:

- ``CI360TransientError``: throttling, timeouts, 5xx, a record table failing. The state's ``Retry``
  names it (with the Lambda service's own transient errors), so the step runs again with backoff.
- ``CI360PermanentError``: a refusal (bad layout, the source changed mid-job: 412, a bad value, ...).
  No ``Retry`` names it: the ``Catch`` hands the execution to ``abandon`` at once.
- Anything else (a bug) is raised as ``CI360PermanentError`` too: retrying code cannot fix it.

The message (Step Functions' ``Cause``) is the error's JSON, ``{"code", "message", "details"}``, which
``abandon`` records on the job; it never holds a presigned URL (our messages never do). Failures are
logged and counted (``Failures`` by cause) as the worker does.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from handler.outcomes import tell
from handler.runtime import logger, record_failure, record_landing
from handler.services import services
from transforms import fanout
from transforms.aws import translated
from transforms.ci360.payload import Job
from transforms.errors import ConnectorError
from transforms.fanout.stored_job import read_job
from transforms.jobs.dispatch import job_message, queue_error
from transforms.progress import Deadline
from transforms.settings import Settings


class CI360TransientError(Exception):
    """Worth another try: the state machine's ``Retry`` names this type."""


class CI360PermanentError(Exception):
    """A refusal or a bug: never retried, the execution goes to ``abandon``."""


def cause(error: ConnectorError) -> str:
    return json.dumps({"code": error.code, "message": error.message, "details": error.details})


def _step(name: str, event: dict[str, Any], context: Any,
          work: Callable[[Settings, Deadline | None], Any]) -> Any:
    """Run one step with the job's identity in every log line, and turn its failure into Step Functions'
    terms."""
    job = event.get("job") or (event.get("state") or {}).get("job") or {}
    occurrence_id = job.get("occurrence_id") or job.get("occurrenceId")  # the Job, or the state's identity
    if occurrence_id:
        logger.set_correlation_id(occurrence_id)
        logger.append_keys(task_id=job.get("task_id") or job.get("taskId"), tenant=job.get("tenant"),
                           fanout_step=name)
    try:
        settings = Settings.from_env()
        deadline = (Deadline(context.get_remaining_time_in_millis, margin_s=settings.deadline_margin_s)
                    if context is not None and hasattr(context, "get_remaining_time_in_millis") else None)
        return work(settings, deadline)
    except ConnectorError as error:
        record_failure(error.code)
        extra = {"error_code": error.code, "error_message": error.message}
        if error.transient:
            logger.warning(f"fan-out step {name} failed, will be retried", extra=extra)
            raise CI360TransientError(cause(error)) from None
        logger.error(f"fan-out step {name} failed", extra=extra)
        raise CI360PermanentError(cause(error)) from None
    except Exception:
        logger.exception(f"fan-out step {name} failed unexpectedly")
        record_failure("INTERNAL_ERROR")
        raise CI360PermanentError(cause(ConnectorError("an unexpected error occurred; see the function's "
                                                       "logs"))) from None


@logger.inject_lambda_context(log_event=False, clear_state=True)
def plan(event: dict[str, Any], context: Any) -> dict[str, Any]:
    """The execution's input (``{"job": <identifiers>}``: the job itself is stored) -> the ranges to land."""
    def work(settings: Settings, deadline: Deadline | None) -> dict[str, Any]:
        planned = fanout.plan(event["job"], settings, services(settings), deadline)
        if planned.get("fanout"):
            logger.info("fan-out planned", extra={"ranges": len(planned.get("ranges", [])),
                                                  "source_size": (planned.get("source") or {}).get("size")})
        else:
            logger.warning("the job runs in one function instead", extra={"reason": planned.get("reason")})
        return planned
    return _step("plan", event, context, work)


@logger.inject_lambda_context(log_event=False, clear_state=True)
def land_range(event: dict[str, Any], context: Any) -> dict[str, Any]:
    """One item of the Map: ``{"state": <the plan's state but its ranges>, "item": {index, start, end}}``."""
    def work(settings: Settings, deadline: Deadline | None) -> dict[str, Any]:
        logger.append_keys(range_index=event["item"].get("index"))
        return fanout.land_range(event["state"], event["item"], settings, services(settings), deadline)
    return _step("land_range", event, context, work)


@logger.inject_lambda_context(log_event=False, clear_state=True)
def check_ranges(event: dict[str, Any], context: Any) -> dict[str, Any]:
    """The whole state -> ``{"redo": [...]}`` (ranges whose start state was guessed wrong), maybe with
    ``"fallback"`` (a boundary that cannot be proven: the job goes to one function)."""
    def work(settings: Settings, deadline: Deadline | None) -> dict[str, Any]:
        checked = fanout.check_ranges(event, settings, services(settings))
        if checked.get("fallback"):
            logger.warning("a range boundary cannot be proven; the job runs in one function",
                           extra={"reason": checked["fallback"]})
        elif checked.get("redo"):
            logger.info("ranges to land again with their true start state",
                        extra={"ranges": [item.get("index") for item in checked["redo"]]})
        return checked
    return _step("check_ranges", event, context, work)


@logger.inject_lambda_context(log_event=False, clear_state=True)
def prepare_assembly(event: dict[str, Any], context: Any) -> dict[str, Any]:
    """The whole state -> ``{"batches": [{"batch": n}, ...], "targets", "parts", "bytes"}``: the plan (and
    the uploads it starts) is in the staging folder; the state carries one small item per copy batch."""
    def work(settings: Settings, deadline: Deadline | None) -> dict[str, Any]:
        return fanout.prepare_assembly(event, settings, services(settings))
    return _step("prepare_assembly", event, context, work)


@logger.inject_lambda_context(log_event=False, clear_state=True)
def copy_parts(event: dict[str, Any], context: Any) -> dict[str, Any]:
    """One item of the CopyParts Map: ``{"state": <job, staging, format>, "item": {"batch": n}}``."""
    def work(settings: Settings, deadline: Deadline | None) -> dict[str, Any]:
        logger.append_keys(copy_batch=event["item"].get("batch"))
        return fanout.copy_parts(event["state"], event["item"], settings, services(settings))
    return _step("copy_parts", event, context, work)


@logger.inject_lambda_context(log_event=False, clear_state=True)
def finalize(event: dict[str, Any], context: Any) -> dict[str, Any]:
    """The whole state -> the landing's result (the job record says succeeded; the metrics are published)."""
    def work(settings: Settings, deadline: Deadline | None) -> dict[str, Any]:
        used = services(settings)
        job = _stored_job(used.s3, event.get("job") or {})  # before finalize clears the staging folder
        result = fanout.finalize(event, settings, used)
        record_landing(result)
        if job is not None:
            report = tell(job, result, settings, "fanout", deadline)
            if report:
                result = {**result, "events": report}
        return result
    return _step("finalize", event, context, work)


@logger.inject_lambda_context(log_event=False, clear_state=True)
def abandon(event: dict[str, Any], context: Any) -> dict[str, Any]:
    """The ``Catch`` of every step: ``{"job", "state", "error": {"Error", "Cause"}}``. Leaves nothing at the
    key, marks the job failed with the cause, counts the failure (the failed-executions alarm fires too)."""
    state = dict(event.get("state") or {})
    state.setdefault("job", event["job"])
    error = event.get("error") or {"Error": "Unknown", "Cause": ""}

    def work(settings: Settings, deadline: Deadline | None) -> dict[str, Any]:
        used = services(settings)
        job = _stored_job(used.s3, event["job"])  # before abandon removes it with the rest
        summary = fanout.abandon(state, error, settings, used)
        record_failure(failure_code(error))
        logger.error("fan-out abandoned", extra={"error": error.get("Error"),
                                                 "error_code": failure_code(error)})
        if job is not None:
            tell(job, failure(error), settings, "fanout", deadline)
        return summary
    return _step("abandon", event, context, work)


def _stored_job(s3: Any, ids: dict[str, Any]) -> Job | None:
    """The job, to report its outcome; None (logged) when it is gone: a retried step after the clean-up,
    whose first run reported it."""
    try:
        return read_job(s3, ids)
    except (ConnectorError, KeyError):
        logger.warning("the fan-out's stored job is gone; its outcome is not reported from this step")
        return None


def failure(error: dict[str, Any]) -> ConnectorError:
    """The error a Catch carries, as the ConnectorError that ended the job (its code and message)."""
    try:
        told = json.loads(error.get("Cause") or "")
        ended = ConnectorError(str(told["message"]), told.get("details"))
        ended.code = str(told["code"])
    except (ValueError, TypeError, KeyError):
        ended = ConnectorError(f"the fan-out failed in Step Functions ({error.get('Error') or 'Unknown'})")
        ended.code = str(error.get("Error") or "INTERNAL_ERROR")
    return ended


def failure_code(error: dict[str, Any]) -> str:
    """Our error's code from a Catch's Cause; else Step Functions' own error name (States.Timeout, ...)."""
    try:
        return str(json.loads(error.get("Cause") or "")["code"])
    except (ValueError, TypeError, KeyError):
        return str(error.get("Error") or "Unknown")


@logger.inject_lambda_context(log_event=False, clear_state=True)
def handoff(event: dict[str, Any], context: Any) -> dict[str, Any]:
    """The job cannot fan out (the plan said so, or a range boundary could not be proven): queue the job
    for the worker, the one-function landing, which records it; then clean up what the ranges left."""
    state = dict(event.get("state") or {})
    state.setdefault("job", event["job"])
    reason = state.get("reason") or (state.get("check") or {}).get("fallback") or "not said"

    def work(settings: Settings, deadline: Deadline | None) -> dict[str, Any]:
        used = services(settings)
        job = read_job(used.s3, event["job"])  # before the clean-up, which removes the stored job
        if used.sqs is None:
            raise ConnectorError("the fan-out cannot hand the job to one function: jobs_queue is not set")
        with translated(queue_error):
            used.sqs.send_message(QueueUrl=used.queue_url(settings.jobs_queue), MessageBody=job_message(job))
        fanout.abandon(state, None, settings, used)  # what the ranges left, and the stored job
        logger.warning("the job was handed to one function (the worker)", extra={"reason": reason})
        return {"handedOff": True, "reason": reason, "occurrenceId": job.occurrence_id}
    return _step("handoff", event, context, work)
