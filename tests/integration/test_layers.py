"""The layers point one way: what each entry point loads, what the core hands back, and who decides a
status. (The static side, every import of every module, is the import contract in pyproject.toml, run
by `make test` as `lint-imports`.)"""

from __future__ import annotations

import json
import subprocess
import sys
import time
import uuid
from types import SimpleNamespace
from typing import Any

import boto3

from tests.support.helpers import ROOT
from transforms.errors import SourceError
from transforms.jobs.landing import Guard
from transforms.jobs.store import JobStore
from transforms.progress import Deadline


def loaded_after(statement: str) -> set[str]:
    """The modules a fresh interpreter holds after running ``statement``."""
    code = f"import json, sys\n{statement}\nprint(json.dumps(sorted(sys.modules)))"
    completed = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT,
                               timeout=60, check=True)
    return set(json.loads(completed.stdout.strip().splitlines()[-1]))


def test_get_jobs_loads_what_reading_a_record_needs_and_not_the_landing_stack() -> None:
    modules = loaded_after("import handler.jobs")
    assert {"handler.jobs", "transforms.jobs.store", "boto3"} <= modules  # it did load, and its reader
    landing_stack = {"pyarrow", "transforms.jobs.pipeline", "transforms.jobs.landing",
                     "transforms.jobs.dispatch", "transforms.sources.http", "transforms.sinks.s3",
                     "transforms.formats.columnar", "transforms.formats.typed_csv", "transforms.catalog.glue",
                     "transforms.catalog.athena", "transforms.ci360.payload", "handler.services",
                     "aws_lambda_powertools.utilities.idempotency"}
    assert modules & landing_stack == set()


def test_the_core_and_its_command_line_load_no_handler_module() -> None:
    modules = loaded_after("import transforms.cli.main, transforms.jobs.dispatch, transforms.jobs.landing")
    assert "transforms.jobs.dispatch" in modules
    assert {m for m in modules if m == "handler" or m.startswith("handler.")} == set()


# -- the stores, without a Lambda context ----------------------------------------------------------

def _table(key: str) -> str:
    name = f"t-{uuid.uuid4().hex[:8]}"
    boto3.client("dynamodb").create_table(
        TableName=name, BillingMode="PAY_PER_REQUEST",
        AttributeDefinitions=[{"AttributeName": key, "AttributeType": "S"}],
        KeySchema=[{"AttributeName": key, "KeyType": "HASH"}])
    return name


def _job(**fields: Any) -> Any:
    return SimpleNamespace(occurrence_id=f"occ-{uuid.uuid4()}", task_id="t", task_name="n", tenant="x",
                           bucket="target", key="k.csv", send_parameters={}, **fields)


def test_a_landing_in_progress_is_bounded_by_the_deadlines_time_left() -> None:
    """Powertools reads the time left from the deadline's clock (no Lambda context in the core): the
    in-progress record expires when the invocation would, so a killed run does not block its retry."""
    dynamodb = boto3.client("dynamodb")
    table = _table("id")
    guard = Guard(dynamodb, table, hours=1, deadline=Deadline(lambda: 120_000, margin_s=20))
    seen: list[dict[str, Any]] = []

    def landing() -> dict[str, Any]:
        seen.extend(dynamodb.scan(TableName=table)["Items"])
        return {"rows": 1}

    before = int(time.time() * 1000)  # Powertools records whole milliseconds, truncated
    assert guard.once(_job(), landing) == ({"rows": 1}, True)
    (item,) = seen
    assert item["status"]["S"] == "INPROGRESS"
    expiry = int(item["in_progress_expiration"]["N"])
    assert before + 120_000 <= expiry <= time.time() * 1000 + 120_000


def test_job_records_are_stored_as_dynamodb_types_and_read_back_as_json() -> None:
    """Nested results and errors are maps and lists (readable in the console), numbers are numbers."""
    dynamodb = boto3.client("dynamodb")
    table = _table("occurrence_id")
    store, job = JobStore(dynamodb, table), _job()
    result = {"key": "k.csv", "rows": 4, "seconds": 0.25, "bytesRead": 10, "bytesWritten": 12,
              "checksum": {"algorithm": "CRC32", "value": "abc="}, "glue": {"registered": False, "x": None},
              "schema": ["int", "string"]}
    assert store.accept(job, "async") is None
    store.succeeded(job, result)
    item = dynamodb.get_item(TableName=table, Key={"occurrence_id": {"S": job.occurrence_id}})["Item"]
    assert item["status"] == {"S": "succeeded"} and item["rows"] == {"N": "4"}
    assert item["result"]["M"]["checksum"] == {"M": {"algorithm": {"S": "CRC32"}, "value": {"S": "abc="}}}
    assert item["result"]["M"]["glue"]["M"]["registered"] == {"BOOL": False}
    record = store.get(job.occurrence_id)
    assert record["result"] == result and isinstance(record["rows"], int)
    assert record["status"] == "succeeded" and record["mode"] == "async" and "error" not in record
    json.dumps(record)  # GET /jobs answers it as it is
    store.failed(job, SourceError("late", "data", 403))  # never out of succeeded
    assert store.get(job.occurrence_id) == record
