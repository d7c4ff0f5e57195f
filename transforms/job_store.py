"""One record per CI360 occurrence: what happened to it, for ``GET /jobs/{occurrenceId}`` and for
answering a repeated webhook with the first call's outcome.

Status moves accepted -> running -> succeeded | failed, and never out of ``succeeded``: a duplicate
delivery, or a late failure of one, cannot make a landing that happened look unfinished or failed.
Records expire (DynamoDB TTL) after a while.
"""

from __future__ import annotations

import json
import time
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from transforms.errors import ConnectorError, JobStoreError, aws_error_code
from transforms.job import Job

RECORD_DAYS = 30
ROLE = "jobs"  # the table's role, named in every error
_NOT_SUCCEEDED = "attribute_not_exists(occurrence_id) OR #s <> :succeeded"


class JobStore:
    def __init__(self, dynamodb: Any, table: str, clock: Any = time.time) -> None:
        self._db = dynamodb
        self._table = table
        self._clock = clock

    def get(self, occurrence_id: str) -> dict[str, Any] | None:
        item = self._call("read the job record", self._db.get_item, TableName=self._table,
                          Key={"occurrence_id": {"S": occurrence_id}}, ConsistentRead=True).get("Item")
        return _from_item(item) if item else None

    def accept(self, job: Job, mode: str) -> dict[str, Any] | None:
        """Record a new job; return the existing record instead if this occurrence is already known
        and did not fail (a failed one may be tried again, so it is replaced)."""
        now = self._clock()
        item = {**_identity(job), "status": "accepted", "mode": mode, "created_at": _iso(now),
                "updated_at": _iso(now), "expires_at": int(now + RECORD_DAYS * 86400)}
        try:
            self._db.put_item(TableName=self._table, Item=_to_item(item),
                              ConditionExpression="attribute_not_exists(occurrence_id) OR #s = :failed",
                              ExpressionAttributeNames={"#s": "status"},
                              ExpressionAttributeValues={":failed": {"S": "failed"}})
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") == "ConditionalCheckFailedException":
                return self.get(job.occurrence_id)
            raise self._error(exc, "record the job") from None
        except BotoCoreError as exc:
            raise self._error(exc, "record the job") from None
        return None

    def running(self, job: Job, mode: str) -> dict[str, Any] | None:
        """Mark the job running, unless it already succeeded: then return that record, untouched."""
        if self._update(job, {"status": "running", "mode": mode}, unless_succeeded=True):
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
                attrs[f":v{index}"] = _to_item({name: value})[name]
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
        try:
            self._db.update_item(TableName=self._table, Key={"occurrence_id": {"S": job.occurrence_id}},
                                 UpdateExpression=expression, ExpressionAttributeNames=names,
                                 ExpressionAttributeValues=attrs, **condition)
        except ClientError as exc:
            code = exc.response.get("Error", {}).get("Code")
            if unless_succeeded and code == "ConditionalCheckFailedException":
                return False
            raise self._error(exc, "update the job record") from None
        except BotoCoreError as exc:
            raise self._error(exc, "update the job record") from None
        return True

    def _call(self, action: str, method: Any, **kwargs: Any) -> Any:
        try:
            return method(**kwargs)
        except (ClientError, BotoCoreError) as exc:
            raise self._error(exc, action) from None

    def _error(self, exc: Exception, action: str) -> JobStoreError:
        return store_error(exc, ROLE, self._table, action)


def _identity(job: Job) -> dict[str, Any]:
    return {"occurrence_id": job.occurrence_id, "task_id": job.task_id, "task_name": job.task_name,
            "tenant": job.tenant, "bucket": job.bucket, "key": job.key}


def _iso(epoch: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(epoch))


def _to_item(record: dict[str, Any]) -> dict[str, Any]:
    """Plain attributes as strings/numbers; nested values (result, error) as JSON text."""
    item: dict[str, Any] = {}
    for name, value in record.items():
        if value is None:
            continue
        if isinstance(value, bool | dict | list):
            item[name] = {"S": json.dumps(value)}
        elif isinstance(value, int | float):
            item[name] = {"N": str(value)}
        else:
            item[name] = {"S": str(value)}
    return item


def _from_item(item: dict[str, Any]) -> dict[str, Any]:
    record: dict[str, Any] = {}
    for name, value in item.items():
        if "N" in value:
            number = float(value["N"])
            record[name] = int(number) if number.is_integer() else number
        elif name in ("result", "error"):
            record[name] = json.loads(value["S"])
        else:
            record[name] = value["S"]
    return record


def store_error(exc: Exception, role: str, table: str, action: str) -> JobStoreError:
    """One error for a failure of either table, naming the table's role and DynamoDB's error code."""
    code = aws_error_code(exc)
    return JobStoreError(f"DynamoDB could not {action} in the {role} table {table!r} ({code}); "
                         "the call can be retried", code, role, table)
