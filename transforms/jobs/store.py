"""One record per CI360 occurrence: what happened to it, for ``GET /jobs/{occurrenceId}`` and for
answering a repeated webhook with the first call's outcome.

Status moves accepted -> running -> succeeded | failed, and never out of ``succeeded``: a duplicate
delivery, or a late failure of one, cannot make a landing that happened look unfinished or failed.
Records expire (DynamoDB TTL) after a while.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from decimal import Decimal
from functools import partial
from typing import TYPE_CHECKING, Any

from boto3.dynamodb.types import TypeDeserializer, TypeSerializer

from transforms.aws import SDK_ERRORS, AwsFailure, aws_failure, translated
from transforms.errors import ConnectorError, JobStoreError

if TYPE_CHECKING:  # GET /jobs reads records without loading the job's parsing
    from transforms.ci360.payload import Job

RECORD_DAYS = 30
ROLE = "jobs"  # the table's role, named in every error
_NOT_SUCCEEDED = "attribute_not_exists(occurrence_id) OR #s <> :succeeded"
_CONDITION_FAILED = "ConditionalCheckFailedException"
_SERIALIZER = TypeSerializer()
_DESERIALIZER = TypeDeserializer()


class JobStore:
    def __init__(self, dynamodb: Any, table: str, clock: Any = time.time) -> None:
        self._db = dynamodb
        self._table = table
        self._clock = clock

    def get(self, occurrence_id: str) -> dict[str, Any] | None:
        with translated(self._error("read the job record")):
            item = self._db.get_item(TableName=self._table, Key={"occurrence_id": {"S": occurrence_id}},
                                     ConsistentRead=True).get("Item")
        return _from_item(item) if item else None

    def accept(self, job: Job, mode: str) -> dict[str, Any] | None:
        """Record a new job; return the existing record instead if this occurrence is already known
        and did not fail (a failed one may be tried again, so it is replaced)."""
        now = self._clock()
        item = {**_identity(job), "status": "accepted", "mode": mode, "created_at": _iso(now),
                "updated_at": _iso(now), "expires_at": int(now + RECORD_DAYS * 86400)}
        if self._write("record the job", self._db.put_item, Item=_to_item(item),
                       ConditionExpression="attribute_not_exists(occurrence_id) OR #s = :failed",
                       ExpressionAttributeNames={"#s": "status"},
                       ExpressionAttributeValues={":failed": {"S": "failed"}}):
            return None
        return self.get(job.occurrence_id)

    def running(self, job: Job, mode: str) -> dict[str, Any] | None:
        """Mark the job running, unless it already succeeded: then return that record, untouched.

        A new run's outcome is a new one to report: a failed run's ``events`` are dropped."""
        if self._update(job, {"status": "running", "mode": mode, "events": None}, unless_succeeded=True):
            return None
        return self.get(job.occurrence_id)

    def succeeded(self, job: Job, result: dict[str, Any]) -> None:
        self._update(job, {"status": "succeeded", "rows": result.get("rows"), "result": result,
                           "bytes_read": result.get("bytesRead"), "bytes_written": result.get("bytesWritten"),
                           "error": None})

    def failed(self, job: Job, error: ConnectorError) -> None:
        """Record the failure, unless the job succeeded meanwhile (a duplicate delivery failing late)."""
        self._update(job, {"status": "failed", "error": {"code": error.code, "message": error.message,
                                                         "details": error.details}}, unless_succeeded=True)

    def claim_report(self, job: Job) -> bool:
        """Whether this run may report the job's outcome: True once per outcome (the record's ``events``
        claimed now), False when it was reported already (a repeated webhook, a redelivered message).

        A job with no record (refused before one was written) has nothing to repeat: True. The table
        failing raises JobStoreError (the caller decides: ``transforms.jobs.finish`` reports anyway)."""
        claim = _attribute({"state": "sending", "at": _iso(self._clock())})
        if self._write("claim the outcome's report", self._db.update_item,
                       Key={"occurrence_id": {"S": job.occurrence_id}},
                       UpdateExpression="SET #e = :claim",
                       ConditionExpression="attribute_exists(occurrence_id) AND attribute_not_exists(#e)",
                       ExpressionAttributeNames={"#e": "events"},
                       ExpressionAttributeValues={":claim": claim}):
            return True
        return self.get(job.occurrence_id) is None

    def reported(self, job: Job, report: dict[str, Any], landed: bool) -> None:
        """The delivery report, on the record and (landed) in its result, where a repeat reads it."""
        value = {":r": _attribute(report)}
        names = {"#e": "events"}
        if landed:
            try:
                self._write("record the outcome's report", self._db.update_item,
                            Key={"occurrence_id": {"S": job.occurrence_id}},
                            UpdateExpression="SET #e = :r, #res.#e = :r",
                            ExpressionAttributeNames={**names, "#res": "result"},
                            ExpressionAttributeValues=value)
                return
            except JobStoreError:
                pass  # no result map to hold it (its own write failed): the record's own attribute still
        self._write("record the outcome's report", self._db.update_item,
                    Key={"occurrence_id": {"S": job.occurrence_id}}, UpdateExpression="SET #e = :r",
                    ConditionExpression="attribute_exists(occurrence_id)",
                    ExpressionAttributeNames=names, ExpressionAttributeValues=value)

    def _update(self, job: Job, fields: dict[str, Any], unless_succeeded: bool = False) -> bool:
        """One atomic UpdateItem: set what changed, drop what no longer applies, keep created_at.

        ``unless_succeeded``: a conditional write that leaves a succeeded record alone; False then."""
        now = self._clock()
        values = {**_identity(job), **fields, "updated_at": _iso(now),
                  "expires_at": int(now + RECORD_DAYS * 86400)}
        values.pop("occurrence_id")
        names, attrs, sets, removes = {}, {}, [], []
        for index, (name, value) in enumerate(values.items()):
            names[f"#a{index}"] = name
            if value is None:
                removes.append(f"#a{index}")
            else:
                attrs[f":v{index}"] = _attribute(value)
                sets.append(f"#a{index} = :v{index}")
        names["#created"] = "created_at"
        attrs[":now"] = {"S": _iso(now)}
        sets.append("#created = if_not_exists(#created, :now)")
        expression = "SET " + ", ".join(sets) + (" REMOVE " + ", ".join(removes) if removes else "")
        condition: dict[str, Any] = {}
        if unless_succeeded:
            names["#s"] = "status"
            attrs[":succeeded"] = {"S": "succeeded"}
            condition = {"ConditionExpression": _NOT_SUCCEEDED}
        return self._write("update the job record", self._db.update_item,
                           Key={"occurrence_id": {"S": job.occurrence_id}}, UpdateExpression=expression,
                           ExpressionAttributeNames=names, ExpressionAttributeValues=attrs, **condition)

    def _write(self, action: str, method: Any, **request: Any) -> bool:
        """One write to the table; False when its ``ConditionExpression`` failed."""
        try:
            method(TableName=self._table, **request)
        except SDK_ERRORS as exc:
            failure = aws_failure(exc)
            if "ConditionExpression" in request and failure.code == _CONDITION_FAILED:
                return False
            raise self._error(action)(failure) from None
        return True

    def _error(self, action: str) -> Callable[[AwsFailure], JobStoreError]:
        return partial(store_error, role=ROLE, table=self._table, action=action)


def _identity(job: Job) -> dict[str, Any]:
    return {"occurrence_id": job.occurrence_id, "task_id": job.task_id, "task_name": job.task_name,
            "tenant": job.tenant, "bucket": job.bucket, "key": job.key}


def _iso(epoch: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(epoch))


def _attribute(value: Any) -> dict[str, Any]:
    """DynamoDB's typed form of a value: nested results and errors as maps and lists (readable in the
    console), numbers as Decimal (DynamoDB refuses floats)."""
    return _SERIALIZER.serialize(json.loads(json.dumps(value), parse_float=Decimal))


def _to_item(record: dict[str, Any]) -> dict[str, Any]:
    return {name: _attribute(value) for name, value in record.items() if value is not None}


def _from_item(item: dict[str, Any]) -> dict[str, Any]:
    """The record as plain JSON values (DynamoDB's numbers come back as Decimal)."""
    record = {name: _DESERIALIZER.deserialize(value) for name, value in item.items()}
    return json.loads(json.dumps(record, default=_number))


def _number(value: Any) -> int | float:
    if isinstance(value, Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    raise TypeError(f"{type(value).__name__} is not a JSON value")


def store_error(failure: AwsFailure, role: str, table: str, action: str) -> JobStoreError:
    """One error for a failure of either table, naming the table's role and DynamoDB's error code."""
    code = failure.code
    return JobStoreError(f"DynamoDB could not {action} in the {role} table {table!r} ({code}); "
                         "the call can be retried", code, role, table)
