"""The fan-out's bad paths, against moto over HTTP: a range that fails once and is retried lands no
duplicate; a range that fails for good, or a source replaced mid-job (412), leaves nothing (no object,
no pending upload, no range object) and the job recorded failed; unprovable quoting falls back to one
function; a bad value fails the job as one function would (same row); overwrite=false is refused.

What moto cannot prove: it ignores ``CopySourceIfMatch`` and ``IfNoneMatch`` on completion, and returns
no checksum for a composed upload, so those are proven by AWS's documented behaviour, not here.
"""

from __future__ import annotations

import dataclasses
import gzip
import threading
from typing import Any
from urllib.parse import unquote, urlsplit

import boto3
import pytest

from devstack.localstack import webhook_payload
from tests.support.helpers import JSON_LAYOUT, AsyncStack, Stack
from transforms.aws import client
from transforms.ci360.payload import parse_job
from transforms.errors import BadValueError, ConflictError, ConnectorError
from transforms.fanout import abandon, check_ranges, copy_parts, finalize, land_range, plan, prepare_assembly
from transforms.fanout.errors import SourceChanged
from transforms.fanout.local import assemble_in_process, catch, land_every_range, run_in_process
from transforms.jobs.pipeline import run
from transforms.jobs.services import Services
from transforms.settings import MIB, Settings
from transforms.sources.http import HttpSource

RANGE = MIB
ROW = b'0d4a1b2c-0000-4000-8000-%012d,%d,"o\'neil, %d\nnext line",2024-01-%02d\n'


def audience(size: int = 8 * MIB + 12345) -> bytes:
    out, number = bytearray(), 0
    while len(out) < size:
        out += ROW % (number, number, number, number % 28 + 1)
        number += 1
    return bytes(out)


def settings_for(stack: Stack, **env: str) -> Settings:
    base = Settings.from_env({"s3_bucket_name": stack.target, "part_size_mb": "5",
                              "source_host_allowlist": "http://127.0.0.1:*", **env})
    return dataclasses.replace(base, fanout_range_bytes=RANGE, fanout_min_bytes=1,
                               download_range_bytes=256 * 1024, row_group_bytes=2 * MIB)


def setup(stack: Stack, data: bytes, key: str, env: dict[str, str] | None = None,
          **send: str) -> tuple[Any, Settings, Services, str]:
    data_url, metadata_url = stack.stage(data, JSON_LAYOUT)
    settings = settings_for(stack, **(env or {}))
    dynamodb = boto3.client("dynamodb") if settings.jobs_table else None
    services = Services(s3=client("s3"), http=HttpSource.from_settings(settings), dynamodb=dynamodb)
    job = parse_job(webhook_payload(data_url, metadata_url, key, **send), settings)
    return job, settings, services, data_url


def nothing_left(stack: Stack) -> None:
    assert stack.target_keys() == []
    assert stack.pending_uploads() == []


class FailingLander:
    """``land_range``, failing the given ranges (``times`` times each, or always) after their range
    object landed but before their manifest: the worst moment, a retry must overwrite, not add."""

    def __init__(self, failing: set[int], times: int | None = 1) -> None:
        self.failing, self.times, self.calls = failing, times, {}

    def __call__(self, state, item, settings, services):  # noqa: ANN001, ANN204
        index = item["index"]
        self.calls[index] = self.calls.get(index, 0) + 1
        if index in self.failing and (self.times is None or self.calls[index] <= self.times):
            real = services.s3

            class NoManifest:
                def __getattr__(self, name: str) -> Any:
                    return getattr(real, name)

                def put_object(self, **kwargs: Any) -> Any:
                    if kwargs["Key"].endswith(".json"):
                        raise ConnectorError("injected: the range function died")
                    return real.put_object(**kwargs)

            land_range(state, item, settings, dataclasses.replace(services, s3=NoManifest()))
        return land_range(state, item, settings, services)


def run_with_retry(job, settings, services, lander):  # noqa: ANN001, ANN201
    """The state machine's Retry, in process: a failed range runs again once."""
    def retrying(state, item, settings, services):  # noqa: ANN001, ANN202
        try:
            return lander(state, item, settings, services)
        except ConnectorError:
            return lander(state, item, settings, services)
    return run_in_process(job, settings, services, land=retrying)


@pytest.mark.parametrize("name", ["audience.csv.gz", "audience.parquet"])
def test_a_range_that_fails_once_is_retried_without_a_duplicate(stack: Stack, name: str) -> None:
    data = audience()
    job, settings, services, _ = setup(stack, data, f"fan/{name}")
    lander = FailingLander({2, 5})
    result = run_with_retry(job, settings, services, lander)
    assert lander.calls[2] >= 2 and lander.calls[5] >= 2  # failed once, retried (and maybe redone)
    one = parse_job(webhook_payload(job.data_url, job.metadata_url, f"one/{name}"), settings)
    single = run(one, settings, services.s3, services.http).to_json()
    assert result["rows"] == single["rows"] == data.count(b"\n") // 2
    if name.endswith(".gz"):
        assert gzip.decompress(stack.landed(f"fan/{name}")) == gzip.decompress(stack.landed(f"one/{name}"))
    else:
        import io

        import pyarrow as pa
        import pyarrow.parquet as pq
        fanned = pa.concat_tables(pq.read_table(io.BytesIO(stack.landed(item["key"])))
                                  for item in result["objects"])
        assert fanned.to_pylist() == pq.read_table(io.BytesIO(stack.landed(f"one/{name}"))).to_pylist()
    assert not [key for key in stack.target_keys() if "_ci360-fanout-" in key]
    assert stack.pending_uploads() == []


def test_a_range_that_fails_for_good_leaves_nothing(async_stack: AsyncStack) -> None:
    stack = async_stack.stack
    job, settings, services, _ = setup(stack, audience(), "fan/audience.csv",
                                       {"jobs_table": async_stack.jobs_table})
    # A range function killed mid-upload leaves a pending upload in the staging folder.
    state = plan(job, settings, services)
    services.s3.create_multipart_upload(Bucket=stack.target, Key=state["staging"] + "range-00001.part")
    for item in state["ranges"][:4]:
        land_range(state, item, settings, services)
    assert stack.pending_uploads() and stack.target_keys()
    summary = abandon(state, catch(ConnectorError("range 4 failed for good")), settings, services)
    nothing_left(stack)
    assert summary["aborted"] == 1 and summary["removed"] >= 5
    record = services.job_store(settings).get(job.occurrence_id)
    assert record["status"] == "failed" and record["error"]["message"] == "range 4 failed for good"
    assert abandon(state, catch(ConnectorError("again")), settings, services)["removed"] == 0  # idempotent


def test_a_failed_finalize_leaves_nothing_either(stack: Stack) -> None:
    """Parquet objects composed before a failure are removed; so is the one the key got."""
    job, settings, services, _ = setup(stack, audience(), "fan/audience.parquet")
    real = services.s3
    completed: list[str] = []
    lock = threading.Lock()  # Finalize completes several objects at once

    class FailsLate:
        def __getattr__(self, name: str) -> Any:
            return getattr(real, name)

        def complete_multipart_upload(self, **kwargs: Any) -> Any:
            with lock:
                if len(completed) == 4:
                    raise ConnectorError("injected: S3 failed mid-finalize")
                completed.append(kwargs["Key"])
            return real.complete_multipart_upload(**kwargs)

    with pytest.raises(ConnectorError):
        run_in_process(job, settings, dataclasses.replace(services, s3=FailsLate()))
    assert len(completed) == 4
    nothing_left(stack)


def _replace_source(stack: Stack, data_url: str, data: bytes) -> None:
    key = unquote(urlsplit(data_url).path.split("/", 2)[2])
    stack.s3.put_object(Bucket=stack.staging, Key=key, Body=data)


@pytest.mark.parametrize("name", ["audience.csv", "audience.jsonl"])
def test_a_source_replaced_mid_job_fails_with_412_and_leaves_nothing(stack: Stack, name: str) -> None:
    data = audience()
    job, settings, services, data_url = setup(stack, data, f"fan/{name}")
    state = plan(job, settings, services)
    for item in state["ranges"][:3]:
        land_range(state, item, settings, services)
    _replace_source(stack, data_url, data.replace(b"o'neil", b"O'NEIL"))
    with pytest.raises(SourceChanged) as raised:
        land_range(state, state["ranges"][3], settings, services)
    assert raised.value.response_status == 412 and not raised.value.transient
    abandon(state, catch(raised.value), settings, services)
    nothing_left(stack)


def test_a_source_replaced_before_the_tail_is_read_fails_too(stack: Stack) -> None:
    """A typed range reads past its window to finish its last record: that read is pinned as well."""
    data = audience()
    job, settings, services, data_url = setup(stack, data, "fan/audience.parquet")
    state = plan(job, settings, services)
    real_window = state["ranges"][0]
    _replace_source(stack, data_url, data[:real_window["end"]] + data[real_window["end"]:].upper())
    with pytest.raises(SourceChanged):
        land_range(state, real_window, settings, services)
    abandon(state, catch(SourceChanged("x")), settings, services)
    nothing_left(stack)


def test_unprovable_quotes_fall_back_to_one_function(stack: Stack) -> None:
    data = bytearray(audience())
    stray = data.index(b"\n", 5 * MIB) + 1
    data[stray:stray] = b'id-x,1,say "hi" there,2024-01-01\n'  # a quote inside an unquoted field
    job, settings, services, _ = setup(stack, bytes(data), "fan/audience.parquet")
    outcome = run_in_process(job, settings, services)
    assert outcome["fanout"] is False
    assert "cannot be proven" in outcome["reason"] and "quote inside an unquoted field" in outcome["reason"]
    nothing_left(stack)


def test_a_bad_value_fails_the_job_naming_the_same_row_as_one_function(stack: Stack) -> None:
    data = bytearray(audience())
    at = data.index(b",2024-01-", 6 * MIB)
    data[at + 1:at + 11] = b"2024-13-45"  # an impossible date, in range 6
    job, settings, services, _ = setup(stack, bytes(data), "fan/audience.parquet")
    with pytest.raises(BadValueError) as fanned:
        run_in_process(job, settings, services)
    nothing_left(stack)
    one = parse_job(webhook_payload(job.data_url, job.metadata_url, "one/audience.parquet"), settings)
    with pytest.raises(BadValueError) as single:
        run(one, settings, services.s3, services.http)
    assert fanned.value.message == single.value.message
    assert fanned.value.row > 50_000


def test_overwrite_false_refuses_an_existing_key_before_anything_runs(stack: Stack) -> None:
    stack.s3.put_object(Bucket=stack.target, Key="fan/audience.csv", Body=b"earlier")
    job, settings, services, _ = setup(stack, audience(), "fan/audience.csv", overwrite="false")
    with pytest.raises(ConflictError):
        plan(job, settings, services)
    assert stack.target_keys() == ["fan/audience.csv"]


def test_a_new_columnar_landing_replaces_the_earlier_one_whole(stack: Stack) -> None:
    """overwrite=true: the key's own object and an earlier fan-out's files (another count) are removed,
    so a table over the folder reads this landing alone."""
    for key in ("fan/audience.parquet", "fan/audience-00000-of-00003.parquet", "fan/other.parquet"):
        stack.s3.put_object(Bucket=stack.target, Key=key, Body=b"earlier")
    job, settings, services, _ = setup(stack, audience(), "fan/audience.parquet")
    result = run_in_process(job, settings, services)
    landed = [item["key"] for item in result["objects"]]
    assert sorted(stack.target_keys()) == sorted([*landed, "fan/other.parquet"])


def test_check_ranges_asks_for_redo_only_of_wrongly_speculated_ranges(stack: Stack) -> None:
    data = audience()  # every record holds a quoted line break: many boundaries fall inside quotes
    job, settings, services, _ = setup(stack, data, "fan/audience.jsonl")
    state = plan(job, settings, services)
    for item in state["ranges"]:
        land_range(state, item, settings, services)
    redo = check_ranges(state, settings, services)["redo"]
    for item in redo:
        land_range(state, item, settings, services)
    assert check_ranges(state, settings, services) == {"redo": []}
    assemble_in_process(state, settings, services)
    result = finalize(state, settings, services)
    assert result["fanout"]["redone"] == len(redo)
    one = parse_job(webhook_payload(job.data_url, job.metadata_url, "one/audience.jsonl"), settings)
    run(one, settings, services.s3, services.http)
    assert stack.landed("fan/audience.jsonl") == stack.landed("one/audience.jsonl")


def test_a_key_taken_before_the_finalizer_with_overwrite_false_is_a_conflict_and_stays(stack: Stack) -> None:
    job, settings, services, _ = setup(stack, audience(), "fan/audience.csv", overwrite="false")
    state = plan(job, settings, services)
    for item in state["ranges"]:
        land_range(state, item, settings, services)
    assemble_in_process(state, settings, services)
    stack.s3.put_object(Bucket=stack.target, Key="fan/audience.csv", Body=b"another writer's")
    with pytest.raises(ConflictError) as conflict:
        finalize(state, settings, services)
    abandon(state, catch(conflict.value), settings, services)
    assert stack.target_keys() == ["fan/audience.csv"]  # not ours: left alone
    assert stack.landed("fan/audience.csv") == b"another writer's"
    assert stack.pending_uploads() == []


@pytest.mark.parametrize("name", ["audience.csv", "audience.orc"])
def test_abandon_after_a_finalizer_died_past_its_writes_removes_them(stack: Stack, name: str) -> None:
    job, settings, services, _ = setup(stack, audience(), f"fan/{name}")
    state = plan(job, settings, services)
    land_every_range(state, settings, services)
    assemble_in_process(state, settings, services)
    finalize(state, settings, services)  # then, say, the function timed out before Step Functions heard
    assert stack.target_keys()
    abandon(state, {"Error": "States.Timeout", "Cause": ""}, settings, services)
    nothing_left(stack)


def test_a_retried_finalizer_answers_with_the_recorded_landing(async_stack: AsyncStack) -> None:
    stack = async_stack.stack
    job, settings, services, _ = setup(stack, audience(), "fan/audience.jsonl.gz",
                                       {"jobs_table": async_stack.jobs_table})
    state = plan(job, settings, services)
    assert services.job_store(settings).get(job.occurrence_id)["mode"] == "fanout"
    land_every_range(state, settings, services)
    assemble_in_process(state, settings, services)
    first = finalize(state, settings, services)
    landed = stack.landed("fan/audience.jsonl.gz")
    assert finalize(state, settings, services) == first  # the staging folder is gone: the record answers
    assert stack.landed("fan/audience.jsonl.gz") == landed
    record = services.job_store(settings).get(job.occurrence_id)
    assert record["status"] == "succeeded" and record["result"] == first
    assert stack.target_keys() == ["fan/audience.jsonl.gz"]


def test_glue_registers_the_folder_that_holds_every_part(stack: Stack, glue_database: str) -> None:
    job, settings, services, _ = setup(stack, audience(), "ci360/audience/dt=2026-12-07/audience.parquet",
                                       {"glue_database": glue_database})
    glue = boto3.client("glue")
    result = run_in_process(job, settings, dataclasses.replace(services, glue=glue))
    assert result["glue"]["registered"] is True
    table = glue.get_table(DatabaseName=glue_database, Name=result["glue"]["table"])["Table"]
    location = table["StorageDescriptor"]["Location"]
    assert location == f"s3://{stack.target}/ci360/audience/"
    parts = [item["key"] for item in result["objects"]]
    assert len(parts) == 9 and all(key.startswith("ci360/audience/dt=2026-12-07/audience-") for key in parts)
    assert sorted(stack.target_keys()) == sorted(parts)


def test_the_job_travels_by_the_staging_folder_and_no_state_holds_a_presigned_url(stack: Stack) -> None:
    """The dispatcher stores the job; the execution carries identifiers; no step's input or output (what
    Step Functions keeps in its history) holds a credential."""
    import json

    from transforms.fanout.stored_job import store_job

    job, settings, services, _ = setup(stack, audience(), "fan/audience.jsonl")
    execution_input = store_job(services.s3, job, settings)
    seen = [execution_input]
    state = plan(execution_input, settings, services)
    seen.append(state)
    items = list(state["ranges"])
    while items:
        seen += [land_range(state, item, settings, services) for item in items]
        checked = check_ranges(state, settings, services)
        seen.append(checked)
        items = checked["redo"]
    prepared = prepare_assembly(state, settings, services)
    seen.append(prepared)
    seen += [copy_parts(state, item, settings, services) for item in prepared["batches"]]
    seen.append(finalize(state, settings, services))
    text = json.dumps(seen)
    secrets = ("X-Amz-Signature", "X-Amz-Credential", "X-Amz-Security-Token", job.data_url, job.metadata_url)
    for secret in secrets:
        assert secret not in text
    assert seen[-1]["rows"] == audience().count(b"\n") // 2
    assert stack.target_keys() == ["fan/audience.jsonl"]


def test_a_retried_prepare_assembly_reuses_its_plan_and_uploads(stack: Stack) -> None:
    """PrepareAssembly run twice (a Step Functions retry after its answer was lost) starts no second
    upload: the plan in the staging folder is reused, and the landing is the one-function bytes."""
    job, settings, services, _ = setup(stack, audience(), "fan/audience.jsonl")
    state = plan(job, settings, services)
    land_every_range(state, settings, services)
    first = prepare_assembly(state, settings, services)
    uploads = stack.pending_uploads()
    assert len(uploads) == 1 and uploads[0]["Key"] == "fan/audience.jsonl"
    assert prepare_assembly(state, settings, services) == first
    assert stack.pending_uploads() == uploads
    for item in first["batches"]:
        copy_parts(state, item, settings, services)
    result = finalize(state, settings, services)
    assert result["fanout"]["copyBatches"] == len(first["batches"])
    one = parse_job(webhook_payload(job.data_url, job.metadata_url, "one/audience.jsonl"), settings)
    run(one, settings, services.s3, services.http)
    assert stack.landed("fan/audience.jsonl") == stack.landed("one/audience.jsonl")
    assert stack.pending_uploads() == []
