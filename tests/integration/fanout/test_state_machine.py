"""The fan-out end to end: the webhook starts an execution (moto's Step Functions records it), and the
packaged state machine (the ASL in the template `serverless package` wrote) runs it on this machine
through aws-local-stepfunctions (scripts/fanout-local.mjs), each Task state running our handler in a
local Python "container", against moto's S3, SQS and DynamoDB over HTTP.

Files are small (a few MiB in 1 MiB ranges: at least 8 ranges), with a quoted line break in every record,
so ranges start inside quotes and the redo Map runs; what lands is compared with a one-function landing of
the same file: the same bytes (.csv, .jsonl), the same bytes decompressed (.csv.gz), the same rows in the
same order read by pyarrow and DuckDB (.parquet).
"""

from __future__ import annotations

import base64
import gzip
import hashlib
import io
import json
import os
import shutil
import subprocess
import uuid
import zlib
from pathlib import Path
from typing import Any

import boto3
import duckdb
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from devstack.ci360_gateway import FakeCI360Gateway
from devstack.localstack import webhook_payload
from handler import worker
from tests.support import packaging
from tests.support.helpers import (
    JSON_LAYOUT,
    ROOT,
    AsyncStack,
    LambdaContext,
    api_gateway_event,
    get_job,
    invoke,
)
from tests.support.outcomes import TRACKING, Bus, told
from tests.support.s3proxy import ChecksumProxy
from transforms.ci360.payload import parse_job
from transforms.jobs import pipeline
from transforms.jobs.dispatch import execution_name
from transforms.settings import Settings
from transforms.sources.http import HttpSource

pytestmark = pytest.mark.package  # builds the template with `serverless package` (seconds: no wheels)

RUNNER = ROOT / "scripts" / "fanout-local.mjs"
ARN_SETTING = "fanout_state_machine"  # the environment variable serverless.yml sets
MIB = 1024 * 1024
# Every record has a quoted field with a line break and doubled quotes: a range's first LF is often
# inside quotes, so speculated start states are wrong and the redo Map lands those ranges again.
ROW = b'id-%07d,%d,"say ""hi""\nto %d, ok",2024-01-%02d\n'
HEADER_ROW = b"identity_id,external_id,email,signup_date\n"  # JSON_LAYOUT's columns


def audience(size: int) -> bytes:
    rows, total, i = [], 0, 0
    while total < size:
        row = ROW % (i, 100000 + i, i, 1 + i % 28)
        rows.append(row)
        total += len(row)
        i += 1
    return b"".join(rows)


@pytest.fixture(scope="module")
def template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    if shutil.which("node") is None:
        pytest.fail("node not found: the local state machine runs on Node.js (README)")
    built = packaging.build("fanout", tmp_path_factory.mktemp("sls-fanout"))
    return built.out / "cloudformation-template-update-stack.json"


@pytest.fixture
def fanout(async_stack: AsyncStack, monkeypatch: pytest.MonkeyPatch) -> AsyncStack:
    """The job stack plus the state machine as moto's Step Functions knows it, named in the environment
    as serverless.yml names it; fan-out from 1 MiB, in 1 MiB ranges."""
    sfn = boto3.client("stepfunctions")
    placeholder = json.dumps({"StartAt": "S", "States": {"S": {"Type": "Succeed"}}})  # moto runs nothing
    arn = sfn.create_state_machine(name=f"fanout-{uuid.uuid4().hex[:8]}", definition=placeholder,
                                   roleArn="arn:aws:iam::123456789012:role/fanout")["stateMachineArn"]
    monkeypatch.setenv(ARN_SETTING, arn)
    monkeypatch.setenv("fanout_min_mb", "1")
    monkeypatch.setenv("fanout_range_mb", "1")
    return async_stack


def executions(arn: str) -> list[dict[str, Any]]:
    return boto3.client("stepfunctions").list_executions(stateMachineArn=arn)["executions"]


Runs = tuple[int, list[dict[str, Any]], list[dict[str, Any]]]


def run_state_machine(template: Path, execution_arns: list[str], tmp_path: Path,
                      env: dict[str, str] | None = None, timeout_s: float = 600) -> Runs:
    """The executions' inputs as Step Functions recorded them, run at once by the packaged definition
    locally: the exit code, each execution's output (or {"Error", "Cause"}) and what happened in each."""
    sfn = boto3.client("stepfunctions")
    inputs = "".join(sfn.describe_execution(executionArn=arn)["input"] + "\n" for arn in execution_arns)
    events = tmp_path / "events.json"
    command = ["node", str(RUNNER), "run", "--template", str(template), "--input", "-",
               "--param", "FanoutMaxConcurrency=2", "--events", str(events),
               "--logs", str(tmp_path / "functions.log"), "--retry-pause-ms", "50"]
    completed = subprocess.run(command, input=inputs, capture_output=True, text=True, timeout=timeout_s,
                               env={**os.environ, **(env or {})}, cwd=ROOT)
    assert completed.returncode in (0, 1), completed.stderr[-4000:]
    outputs = [json.loads(line) for line in completed.stdout.strip().splitlines()]
    return completed.returncode, outputs, json.loads(events.read_text())["executions"]


def start(stack: AsyncStack, data: bytes, key: str, **params: str) -> tuple[dict[str, Any], Any]:
    data_url, metadata_url = stack.stack.stage(data, JSON_LAYOUT)
    payload = webhook_payload(data_url, metadata_url, key, **params)
    return payload, invoke(api_gateway_event(payload))


def one_function(stack: AsyncStack, data: bytes, key: str, monkeypatch: pytest.MonkeyPatch) -> bytes:
    """The same file landed by one function (the webhook, inline)."""
    with monkeypatch.context() as inline:
        inline.setenv("fanout_min_mb", "0")
        _, response = start(stack, data, key, processing_mode="sync")
    assert response.status == 200, response.body
    return stack.stack.landed(key)


def leftovers(stack: AsyncStack, keep: set[str]) -> list[str]:
    return sorted(set(stack.stack.target_keys()) - keep)


EXTENSIONS = (".csv", ".csv.gz", ".jsonl", ".parquet")


def test_fanned_out_landings_equal_one_function_landings(fanout: AsyncStack, template: Path, tmp_path: Path,
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    """Every format at once (one local run, sharing warm containers, as Lambda would). FANOUT_TEST_MIB
    (default 8) scales the audience, still in 9 ranges: 1024 is the issue's 1 GiB (minutes, and moto holds
    every object in memory)."""
    mib = int(os.environ.get("FANOUT_TEST_MIB", "8"))
    monkeypatch.setenv("fanout_range_mb", str(mib // 8))
    monkeypatch.setenv("fanout_copy_batch_mb", "1")  # one part a batch: several CopyParts workers each
    data = audience(mib * MIB + 300_000)  # 9 ranges
    rows = data.count(b"\n") // 2
    expected = {ext: one_function(fanout, data, f"one/audience{ext}", monkeypatch) for ext in EXTENSIONS}
    payloads = {}
    for ext in EXTENSIONS:
        payloads[ext], response = start(fanout, data, f"fan/audience{ext}")
        assert response.status == 202, response.body
        assert (response.body["status"], response.body["mode"]) == ("accepted", "fanout")
    arn = os.environ[ARN_SETTING]
    started = {e["name"]: e["executionArn"] for e in executions(arn)}
    settings = Settings.from_env()
    names = [execution_name(parse_job(payloads[ext], settings), 1) for ext in EXTENSIONS]
    assert sorted(started) == sorted(names)  # one execution each, named after its landing

    code, outputs, runs = run_state_machine(template, [started[name] for name in names], tmp_path)
    assert code == 0, [(run["failed"], [i for i in run["invocations"] if not i["ok"]]) for run in runs]
    landed_keys = set()
    for ext, output, run in zip(EXTENSIONS, outputs, runs, strict=True):
        ranges = sorted({i["index"] for i in run["invocations"] if i["state"] == "LandRange"})
        assert ranges == list(range(9)), ext
        batches = sorted(i["index"] for i in run["invocations"] if i["state"] == "CopyBatch")
        assert batches == list(range(output["fanout"]["copyBatches"])), ext
        if ext != ".csv.gz":  # whose ~3 MB of output is one part: one batch
            assert len(batches) >= 2, ext
        assert output["key"] == f"fan/audience{ext}" and output["rows"] == rows, ext
        objects = [item["key"] for item in output["objects"]]
        landed_keys |= set(objects)
        if ext == ".parquet":  # one object per range beside the key, in row order (README, "Fan-out")
            check_parquet(fanout, objects, expected[ext], rows, tmp_path)
            continue
        assert objects == [f"fan/audience{ext}"], ext
        landed = fanout.stack.landed(f"fan/audience{ext}")
        if ext == ".csv.gz":
            assert gzip.decompress(landed) == gzip.decompress(expected[ext])
        else:
            assert landed == expected[ext], ext
    # Nothing else: no range object, manifest or staged job left beside what landed.
    assert leftovers(fanout, landed_keys | {f"one/audience{ext}" for ext in EXTENSIONS}) == []
    assert fanout.stack.pending_uploads() == []
    # Some ranges started inside quotes: the redo Map landed them again with their true start state.
    assert any(i["state"] == "LandRangeAgain" for run in runs for i in run["invocations"])
    for ext, output in zip(EXTENSIONS, outputs, strict=True):
        occurrence_id = payloads[ext]["task"]["occurrenceId"]
        status, record = get_job(occurrence_id)
        assert status == 200 and record["status"] == "succeeded", (ext, record)
        # After the execution: the first landing's answer, and nothing started.
        again = invoke(api_gateway_event(payloads[ext]))
        assert again.status == 200 and again.body == output, ext
    assert len(executions(arn)) == len(EXTENSIONS)


LARGE = os.environ.get("FANOUT_LARGE_MIB")


@pytest.mark.skipif(not LARGE, reason="the issue's 1 GiB fan-out takes minutes and ~10 GB of moto's memory: "
                    "run it with FANOUT_LARGE_MIB=1024 (README, 'Fan-out, locally')")
def test_a_large_audience_fans_out_identically(fanout: AsyncStack, template: Path, tmp_path: Path,
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    """FANOUT_LARGE_MIB of audience, staged once, landed by one function (the pipeline, no deadline: the
    worker's landing) and through the packaged state machine in 9 ranges, every format; compared by
    digests of what landed (decompressed for .csv.gz) and, for .parquet, as Arrow tables, so that neither
    this process nor moto holds every output at once."""
    mib = int(LARGE or "0")
    monkeypatch.setenv("fanout_range_mb", str(max(1, mib // 8)))
    # moto copies a whole object out for every ranged GET: 4 MiB ranges of 1 GiB make it copy 256 GiB.
    # 16 MiB ranges at 1 GiB keep that to 64 copies a read (S3 has no such cost); much larger ones
    # hold back a range's first byte so long that its deadline, seeing no progress, gives up.
    monkeypatch.setenv("download_range_mb", str(max(4, mib // 64)))
    monkeypatch.setenv("download_connections", "2")  # and few at once: moto serves them on one core
    data = audience(mib * MIB + 300_000)  # 9 ranges
    rows = data.count(b"\n") // 2
    data_url, metadata_url = fanout.stack.stage(data, JSON_LAYOUT)
    del data
    settings = Settings.from_env()
    one: dict[str, Any] = {}
    for ext in EXTENSIONS:
        key = f"one/audience{ext}"
        job = parse_job(webhook_payload(data_url, metadata_url, key), settings)
        assert pipeline.run(job, settings, fanout.stack.s3, HttpSource.from_settings(settings)).rows == rows
        one[ext] = landed_digest(fanout, [key], ext)
        fanout.stack.s3.delete_object(Bucket=fanout.stack.target, Key=key)
    for ext in EXTENSIONS:
        response = invoke(api_gateway_event(webhook_payload(data_url, metadata_url, f"fan/audience{ext}")))
        assert response.status == 202 and response.body["mode"] == "fanout", response.body
    arns = [e["executionArn"] for e in sorted(executions(os.environ[ARN_SETTING]), key=lambda e: e["name"])]
    for arn in arns:  # one execution at a time, so that moto's one core serves one fan-out's ranges
        code, (output,), (ran,) = run_state_machine(template, [arn], tmp_path, timeout_s=3600)
        assert code == 0, (ran["failed"], [i for i in ran["invocations"] if not i["ok"]])
        ext = "." + output["key"].split(".", 1)[1]
        assert sorted({i["index"] for i in ran["invocations"] if i["state"] == "LandRange"}) == list(range(9))
        assert output["rows"] == rows, ext
        landed = [item["key"] for item in output["objects"]]
        assert landed_digest(fanout, landed, ext) == one[ext], ext
        for key in landed:  # moto holds every object in memory
            fanout.stack.s3.delete_object(Bucket=fanout.stack.target, Key=key)
        print(f"{ext}: {mib} MiB, {rows} rows, 9 ranges, {output['bytesWritten']} bytes written, "
              f"{output['seconds']} s, identical to one function")


def landed_digest(fanout: AsyncStack, keys: list[str], ext: str) -> Any:
    """What a user compares: the bytes (decompressed) of the CSV family and JSON Lines, streamed through
    SHA-256; the rows of Parquet, in order, as one Arrow table."""
    if ext == ".parquet":
        tables = [pq.read_table(io.BytesIO(fanout.stack.landed(key))) for key in sorted(keys)]
        return pa.concat_tables(tables).combine_chunks()
    (key,) = keys
    body = fanout.stack.s3.get_object(Bucket=fanout.stack.target, Key=key)["Body"]
    stream = gzip.GzipFile(fileobj=body) if ext.endswith(".gz") else body
    digest = hashlib.sha256()
    while chunk := stream.read(8 * MIB):
        digest.update(chunk)
    return digest.hexdigest()


def check_parquet(fanout: AsyncStack, objects: list[str], expected: bytes, rows: int, tmp_path: Path) -> None:
    """The same rows in the same order, by pyarrow and by DuckDB over every object (as Athena reads the
    folder)."""
    assert objects == sorted(objects) and len(objects) >= 2
    assert all(key.startswith("fan/audience-") and key.endswith(".parquet") for key in objects)
    parts = [pq.read_table(io.BytesIO(fanout.stack.landed(key))) for key in objects]
    single = pq.read_table(io.BytesIO(expected))
    assert sum(t.num_rows for t in parts) == single.num_rows == rows
    assert all(t.schema.equals(single.schema) for t in parts)
    assert [row for t in parts for row in t.to_pylist()] == single.to_pylist()
    paths = [_spill(tmp_path, f"fan-{i}", fanout.stack.landed(key)) for i, key in enumerate(objects)]
    with duckdb.connect() as db:
        fanned = db.execute("SELECT * EXCLUDE (filename, file_row_number) FROM read_parquet(?, "
                            "filename = true, file_row_number = true) ORDER BY filename, file_row_number",
                            [paths]).fetchall()
        one = db.execute("SELECT * FROM read_parquet(?)", [_spill(tmp_path, "one", expected)]).fetchall()
    assert fanned == one


def _spill(tmp_path: Path, name: str, data: bytes) -> str:
    """DuckDB reads a file: the test's copy, written by the test (never by the code under test)."""
    path = tmp_path / f"{name}.parquet"
    path.write_bytes(data)
    return str(path)


def test_a_repeated_webhook_during_the_execution_gets_the_first_answer_and_starts_nothing(
        fanout: AsyncStack) -> None:
    payload, first = start(fanout, audience(3 * MIB), "repeat/audience.csv")
    second = invoke(api_gateway_event(payload))
    assert (first.status, second.status) == (202, 202)
    assert second.body["jobId"] == first.body["jobId"] and second.body["mode"] == "fanout"
    assert len(executions(os.environ[ARN_SETTING])) == 1
    assert fanout.queued() == []  # and nothing went to the worker's queue
    assert get_job(payload["task"]["occurrenceId"])[1]["status"] == "accepted"


def test_a_failed_execution_leaves_nothing_and_marks_the_job_failed(fanout: AsyncStack, template: Path,
                                                                   tmp_path: Path) -> None:
    data = bytearray(audience(4 * MIB))
    middle = data.index(b"\nid-", len(data) // 2) + 1
    row_end = data.index(b",", middle)
    data[row_end + 1:data.index(b",", row_end + 1)] = b"not-a-number"  # external_id is NUMERIC: a bad value
    payload, response = start(fanout, bytes(data), "bad/audience.parquet")
    assert response.status == 202, response.body
    (execution,) = executions(os.environ[ARN_SETTING])
    code, (output,), (run,) = run_state_machine(template, [execution["executionArn"]], tmp_path)
    assert code == 1 and output["Error"] == "CI360FanoutFailed", output
    failures = [i for i in run["invocations"] if not i["ok"]]
    assert failures and {i["errorType"] for i in failures} == {"CI360PermanentError"}  # never retried
    assert [i["state"] for i in run["invocations"]].count("Abandon") == 1
    assert fanout.stack.target_keys() == []  # no object, no range object, no manifest
    assert fanout.stack.pending_uploads() == []
    status, record = get_job(payload["task"]["occurrenceId"])
    assert record["status"] == "failed" and record["error"]["code"] == "BAD_VALUE", record
    logs = (tmp_path / "functions.log").read_text()
    assert '"cause":"BAD_VALUE"' in logs.replace(" ", "")  # the Failures metric, by cause
    assert "X-Amz-Signature" not in logs


def test_a_job_that_cannot_fan_out_is_handed_to_the_worker(fanout: AsyncStack, template: Path, tmp_path: Path,
                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    """The plan says why not (here: the file fits in one range of the steps' fanout_range_mb): HandOff
    queues the job for the worker, which lands it in one function, and nothing of the fan-out stays."""
    data = audience(2 * MIB)
    payload, response = start(fanout, data, "handoff/audience.csv")
    assert response.status == 202 and response.body["mode"] == "fanout"
    (execution,) = executions(os.environ[ARN_SETTING])
    monkeypatch.setenv("fanout_range_mb", "64")  # the steps' setting: one range holds the whole file
    code, (output,), (run,) = run_state_machine(template, [execution["executionArn"]], tmp_path)
    assert code == 0 and output["handedOff"] is True and "one range" in output["reason"], output
    assert [i["state"] for i in run["invocations"]] == ["Plan", "HandOff"]
    assert fanout.stack.target_keys() == []  # the stored job is gone; nothing landed yet
    worker.handle(fanout.sqs_event(), LambdaContext())
    assert fanout.stack.landed("handoff/audience.csv") == HEADER_ROW + data
    assert fanout.stack.target_keys() == ["handoff/audience.csv"]
    assert get_job(payload["task"]["occurrenceId"])[1]["status"] == "succeeded"


def test_a_range_throttled_past_the_sdk_retries_is_retried_by_the_state_machine_and_lands_once(
        fanout: AsyncStack, template: Path, tmp_path: Path, moto_server: Any,
        monkeypatch: pytest.MonkeyPatch) -> None:
    """S3 answers SlowDown to range 2's upload more times than the SDK retries: the range raises
    CI360TransientError, the Map's Retry runs it again, and it lands once (its object key is the range's)."""
    data = audience(4 * MIB + 1000)
    expected = one_function(fanout, data, "one/throttled.csv", monkeypatch)
    payload, response = start(fanout, data, "fan/throttled.csv")
    assert response.status == 202
    (execution,) = executions(os.environ[ARN_SETTING])
    proxy = ChecksumProxy(moto_server.endpoint, "none", slow_down=r"^PUT .*range-00002\.part", slow_downs=3)
    try:
        code, (output,), (run,) = run_state_machine(template, [execution["executionArn"]], tmp_path,
                                                    env={"AWS_ENDPOINT_URL_S3": proxy.endpoint})
    finally:
        proxy.stop()
    assert code == 0, output
    assert len(proxy.slowed) == 3  # the SDK's three attempts, then the state machine's retry
    tries = [i for i in run["invocations"] if i["state"] == "LandRange" and i["index"] == 2]
    assert [(i["ok"], i["errorType"]) for i in tries] == [(False, "CI360TransientError"), (True, None)]
    assert fanout.stack.landed("fan/throttled.csv") == expected
    assert leftovers(fanout, {"one/throttled.csv", "fan/throttled.csv"}) == []
    assert fanout.stack.pending_uploads() == []
    assert get_job(payload["task"]["occurrenceId"])[1]["status"] == "succeeded"


# -- the outcome, told once (issue 19) ------------------------------------------------------------

def test_a_fanned_out_landing_is_told_once(fanout: AsyncStack, outcomes: None, gateway: FakeCI360Gateway,
                                           bus: Bus, template: Path, tmp_path: Path) -> None:
    payload, response = start(fanout, audience(3 * MIB), "told/audience.csv")
    assert response.status == 202 and gateway.requests == []  # accepted is not an outcome
    (execution,) = executions(os.environ[ARN_SETTING])
    code, (result,), _ = run_state_machine(template, [execution["executionArn"]], tmp_path)
    assert code == 0, result
    event = told(gateway)
    assert (event["status"], event["key"], event["format"]) == ("succeeded", "told/audience.csv", "csv")
    assert event["occurrenceId"] == payload["task"]["occurrenceId"]
    assert event["responseTrackingCode"] == TRACKING and event["rows"] == str(result["rows"])
    (landed,) = bus.events()
    assert (landed["source"], landed["detail-type"]) == ("ci360.s3-connector", "Audience landed")
    assert landed["detail"]["mode"] == "fanout" and landed["detail"]["checksum"] == result["checksum"]
    assert result["events"]["ci360"]["delivered"] and result["events"]["eventBridge"]["delivered"]


def test_a_failed_fan_out_is_told_once(fanout: AsyncStack, outcomes: None, gateway: FakeCI360Gateway,
                                       bus: Bus, template: Path, tmp_path: Path) -> None:
    data = bytearray(audience(3 * MIB))
    middle = data.index(b"\nid-", len(data) // 2) + 1
    row_end = data.index(b",", middle)
    data[row_end + 1:data.index(b",", row_end + 1)] = b"not-a-number"  # a bad value in a numeric column
    payload, response = start(fanout, bytes(data), "told/bad.parquet")
    assert response.status == 202
    (execution,) = executions(os.environ[ARN_SETTING])
    code, (output,), _ = run_state_machine(template, [execution["executionArn"]], tmp_path)
    assert code == 1, output
    event = told(gateway)
    assert (event["status"], event["errorCode"], event["key"]) == ("failed", "BAD_VALUE", "told/bad.parquet")
    assert event["occurrenceId"] == payload["task"]["occurrenceId"]
    assert "not-a-number" in event["errorMessage"]
    (failed,) = bus.events()
    assert failed["detail-type"] == "Audience failed" and failed["detail"]["error"]["code"] == "BAD_VALUE"
    assert "X-Amz-Signature" not in str(failed) and "X-Amz-Signature" not in str(event)


# -- the assembly spread over functions: PrepareAssembly, CopyParts (one worker a batch), Finalize ----------

def copied_through(fanout: AsyncStack, template: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                   moto_server: Any, key: str, faults: dict[str, Any],
                   **params: str) -> tuple[bytes, dict[str, Any], Runs, ChecksumProxy]:
    """14 MiB of CSV in 6 MiB ranges (so the parts are UploadPartCopy copies of the range objects), one
    part a copy batch, run through the packaged state machine with S3 behind a proxy that injects
    ``faults``; the data, the webhook's payload, the run and the proxy."""
    monkeypatch.setenv("fanout_range_mb", "6")
    monkeypatch.setenv("fanout_copy_batch_mb", "1")
    data = audience(14 * MIB)
    payload, response = start(fanout, data, key, **params)
    assert response.status == 202, response.body
    (execution,) = executions(os.environ[ARN_SETTING])
    proxy = ChecksumProxy(moto_server.endpoint, "none", **faults)
    try:
        ran = run_state_machine(template, [execution["executionArn"]], tmp_path,
                                env={"AWS_ENDPOINT_URL_S3": proxy.endpoint})
    finally:
        proxy.stop()
    return data, payload, ran, proxy


def tries(run: dict[str, Any], state: str, index: int | None = None) -> list[tuple[bool, str | None]]:
    return [(i["ok"], i["errorType"]) for i in run["invocations"]
            if i["state"] == state and (index is None or i["index"] == index)]


def test_a_copy_batch_that_fails_once_is_retried_and_lands_once(
        fanout: AsyncStack, template: Path, tmp_path: Path, moto_server: Any,
        monkeypatch: pytest.MonkeyPatch) -> None:
    """S3 throttles part 2's copy past the SDK's retries: its batch (1) fails, the Map's Retry runs it
    again, which copies part 2 again (S3 keeps one part 2): the bytes are one function's."""
    key = "fan/copied.csv"
    data, payload, (code, (output,), (run,)), proxy = copied_through(
        fanout, template, tmp_path, monkeypatch, moto_server, key,
        {"slow_down": r"^PUT /[^/]+/fan/copied\.csv\?(.*&)?partNumber=2(&|$)", "slow_downs": 3})
    assert code == 0, output
    assert len(proxy.slowed) == 3
    assert output["fanout"]["copyBatches"] == output["fanout"]["parts"] == 3
    assert tries(run, "CopyBatch", 1) == [(False, "CI360TransientError"), (True, None)]
    assert tries(run, "CopyBatch", 0) == tries(run, "CopyBatch", 2) == [(True, None)]
    landed = fanout.stack.landed(key)
    assert landed == one_function(fanout, data, "one/copied.csv", monkeypatch)
    assert output["checksum"]["value"] == base64.b64encode(zlib.crc32(landed).to_bytes(4, "big")).decode()
    assert leftovers(fanout, {key, "one/copied.csv"}) == []
    assert fanout.stack.pending_uploads() == []
    assert get_job(payload["task"]["occurrenceId"])[1]["status"] == "succeeded"


def test_a_copy_batch_that_fails_for_good_leaves_nothing(
        fanout: AsyncStack, template: Path, tmp_path: Path, moto_server: Any,
        monkeypatch: pytest.MonkeyPatch) -> None:
    """S3 refuses part 2's copy (AccessDenied: not retried): Abandon aborts the assembly's upload, removes
    the staging folder (range objects, manifests, the plan) and records the job failed with the cause."""
    key = "fan/refused.csv"
    _, payload, (code, (output,), (run,)), proxy = copied_through(
        fanout, template, tmp_path, monkeypatch, moto_server, key,
        {"deny": r"^PUT /[^/]+/fan/refused\.csv\?(.*&)?partNumber=2(&|$)"})
    assert code == 1 and output["Error"] == "CI360FanoutFailed", output
    assert proxy.denied and tries(run, "CopyBatch", 1) == [(False, "CI360PermanentError")]
    assert tries(run, "Abandon") == [(True, None)] and tries(run, "Finalize") == []
    assert fanout.stack.target_keys() == []  # no object at the key, no staging object
    assert fanout.stack.pending_uploads() == []
    record = get_job(payload["task"]["occurrenceId"])[1]
    assert record["status"] == "failed" and record["error"]["code"] == "S3_ERROR", record
    assert "AccessDenied" in record["error"]["message"] and "copy part 2" in record["error"]["message"]


def test_finalize_retried_after_its_complete_succeeded_recognises_its_object(
        fanout: AsyncStack, template: Path, tmp_path: Path, moto_server: Any,
        monkeypatch: pytest.MonkeyPatch) -> None:
    """S3 completes the upload but every answer to it is lost: Finalize fails (transient), Step Functions
    runs it again, the upload is gone (NoSuchUpload) and the object at the key is this fan-out's (owner
    metadata, CRC32): the landing is reported, with overwrite=false not taken for a conflict."""
    key = "fan/retried.csv"
    data, payload, (code, (output,), (run,)), proxy = copied_through(
        fanout, template, tmp_path, monkeypatch, moto_server, key,
        {"lose": r"^POST /[^/]+/fan/retried\.csv\?uploadId=", "losses": 3}, overwrite="false")
    assert code == 0, output
    assert len(proxy.lost) == 3  # the SDK's three attempts, each done by S3 and its answer lost
    assert tries(run, "Finalize") == [(False, "CI360TransientError"), (True, None)]
    landed = fanout.stack.landed(key)
    assert landed == one_function(fanout, data, "one/retried.csv", monkeypatch)
    assert output["key"] == key and output["rows"] == data.count(b"\n") // 2
    assert output["checksum"]["value"] == base64.b64encode(zlib.crc32(landed).to_bytes(4, "big")).decode()
    assert leftovers(fanout, {key, "one/retried.csv"}) == []
    assert fanout.stack.pending_uploads() == []
    status, record = get_job(payload["task"]["occurrenceId"])
    assert record["status"] == "succeeded" and record["result"] == output
