"""The outcome, out to EventBridge: one event per landing for the data team's rules.

``source`` ``ci360.s3-connector``, ``detail-type`` "Audience landed" or "Audience failed", ``detail`` the
job's result (bucket, key or keys, format, rows, schema, checksum, the Glue table when registered) with
the task it came from, or the error. A presigned result link (``url``) is left out: an event bus is read
by more than CI360. A failed put is reported, never raised: the landing stands.
"""

from __future__ import annotations

import json
from typing import Any

from transforms.aws import SDK_ERRORS, aws_failure
from transforms.outcomes.delivery import Delivery
from transforms.outcomes.final import Final

SOURCE = "ci360.s3-connector"
LANDED = "Audience landed"
FAILED = "Audience failed"
LEFT_OUT = ("url", "events")  # a credential-carrying link; the delivery report of the events themselves


def detail(final: Final) -> dict[str, Any]:
    job = final.job
    task = {"status": final.status, "mode": final.mode, "occurrenceId": job.occurrence_id,
            "taskId": job.task_id, "taskName": job.task_name, "tenant": job.tenant,
            "tenantId": job.tenant_id, "responseTrackingCode": job.response_tracking_code}
    if final.landed:
        result = {name: value for name, value in (final.result or {}).items() if name not in LEFT_OUT}
        return {**result, **task}
    return {**task, "bucket": job.bucket, "keys": final.keys(), "key": final.keys()[0],
            "error": final.error_json()}


def entry(final: Final, bus: str) -> dict[str, Any]:
    return {"Source": SOURCE, "DetailType": LANDED if final.landed else FAILED,
            "Detail": json.dumps(detail(final), default=str), "EventBusName": bus}


def put(events: Any, event: dict[str, Any]) -> Delivery:
    """One PutEvents call (the client's own bounded retries); an entry EventBridge refused counts as a
    failure too (PutEvents answers 200 with FailedEntryCount)."""
    try:
        answer = events.put_events(Entries=[event])
    except SDK_ERRORS as exc:
        failure = aws_failure(exc)
        return Delivery(False, 1, failure.http_status, failure.code)
    status = answer.get("ResponseMetadata", {}).get("HTTPStatusCode")
    outcome = (answer.get("Entries") or [{}])[0]
    if answer.get("FailedEntryCount") or outcome.get("ErrorCode") or not outcome.get("EventId"):
        return Delivery(False, 1, status, str(outcome.get("ErrorCode") or "NotPut"))
    return Delivery(True, 1, status, event_id=outcome["EventId"])
