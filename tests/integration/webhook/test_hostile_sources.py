"""Hostile and broken sources (issue 9): bounded time, bounded size, no false success, no secret in a log.

Every case goes through the webhook handler over real HTTP on 127.0.0.1: moto's S3 for the target and
the staged files, and the scripted fault server for what S3 never does (trickles, silences, error
pages, encodings). Each asserts the status, what is left in S3 (no object, no pending upload) and,
where time is the point, the time taken against the function's deadline.
"""

from __future__ import annotations

import gzip
import io
import json
import logging
import time
import zlib
from typing import Any

import pytest

from devstack.localstack import webhook_payload
from tests.support.faultserver import Script
from tests.support.helpers import (
    DATA,
    HEADER,
    JSON_LAYOUT,
    AsyncStack,
    ClockedContext,
    Response,
    Stack,
    api_gateway_event,
    assert_no_secret,
    get_job,
    invoke,
)


def invoke_with_budget(payload: dict[str, Any], budget_s: float) -> tuple[Response, float]:
    from handler.webhook import handle

    started = time.monotonic()
    raw = handle(api_gateway_event(payload), ClockedContext(budget_s))
    return Response(raw["statusCode"], json.loads(raw["body"]), raw), time.monotonic() - started


def assert_nothing_landed(stack: Stack) -> None:
    assert stack.target_keys() == []
    assert stack.pending_uploads() == []


def assert_stopped_on_the_deadline(stack: Stack, payload: dict[str, Any], logs: Any) -> None:
    """A sync call given 8 s answers 504 DEADLINE_EXCEEDED within them, lands nothing, leaks nothing."""
    response, took = invoke_with_budget(payload, budget_s=8.0)
    assert response.status == 504, response.body
    assert response.body["error"]["code"] == "DEADLINE_EXCEEDED"
    assert took < 8.0 - 1.0, took  # the sync margin (3 s) leaves time for the abort
    assert_nothing_landed(stack)
    assert_no_secret(logs.getvalue(), json.dumps(response.raw), payload=payload)


def with_data(stack: Stack, data_url: str, key: str = "out.csv",
              layout: bytes = JSON_LAYOUT) -> dict[str, Any]:
    _, metadata_url = stack.stage(b"", layout)
    return webhook_payload(data_url, metadata_url, key)


def with_metadata(stack: Stack, metadata_url: str, key: str = "out.csv") -> dict[str, Any]:
    data_url, _ = stack.stage(DATA, JSON_LAYOUT)
    return webhook_payload(data_url, metadata_url, key)


# --- time is bounded -----------------------------------------------------------------------------

@pytest.mark.parametrize(("trickle", "key"), [((1, 0.5), "trickle.csv"), ((16 * 1024, 1.0), "slow.parquet")])
def test_a_trickling_data_file_is_stopped_on_the_deadline(stack: Stack, fault_server, lambda_logs,
                                                          trickle: tuple[int, float], key: str) -> None:
    """A byte every half second, or 16 KB/s: each read returns, so only the deadline can stop it."""
    body = DATA * 20_000
    url = fault_server.url("/trickle", Script(body=body, trickle=trickle))
    assert_stopped_on_the_deadline(stack, with_data(stack, url, key), lambda_logs)


def test_a_sync_call_given_12_seconds_returns_within_them(stack: Stack, fault_server) -> None:
    url = fault_server.url("/slow", Script(body=DATA * 100_000, trickle=(16 * 1024, 1.0)))
    response, took = invoke_with_budget(with_data(stack, url, "slow.csv"), budget_s=12.0)
    assert response.status == 504, response.body
    assert 5.0 < took < 12.0, took
    assert_nothing_landed(stack)


def test_a_silent_data_file_is_stopped_on_the_deadline_not_the_read_timeout(stack: Stack, fault_server,
                                                                             monkeypatch) -> None:
    monkeypatch.setenv("read_timeout", "60")
    url = fault_server.url("/stall", Script(body=DATA * 1000, trickle=(len(DATA) * 10, 30.0)))
    response, took = invoke_with_budget(with_data(stack, url, "stall.csv.gz"), budget_s=6.0)
    assert response.status == 504 and response.body["error"]["code"] == "DEADLINE_EXCEEDED", response.body
    assert took < 6.0, took
    assert_nothing_landed(stack)


@pytest.mark.parametrize("trickle", [(1, 0.5), (64 * 1024, 30.0)], ids=["trickle", "silent"])
def test_a_ranged_download_is_stopped_on_the_deadline(stack: Stack, fault_server, lambda_logs, monkeypatch,
                                                      trickle: tuple[int, float]) -> None:
    """download_connections=8: a server that honours Range and gives an ETag, so the data file is
    fetched as ranges in parallel, each of them trickling (or silent after its first bytes). Every
    range's reads and the reader's wait for the next range are bounded by the deadline: the call stops
    on time, the upload is aborted, and no range is left downloading."""
    monkeypatch.setenv("download_connections", "8")
    monkeypatch.setenv("download_range_mb", "1")
    monkeypatch.setenv("read_timeout", "60")
    body = DATA * 20_000  # about 3.4 MB: four ranges of 1 MiB
    url = fault_server.url("/ranged-trickle", Script(body=body, etag='"v1"', trickle=trickle))
    assert_stopped_on_the_deadline(stack, with_data(stack, url, "ranged-trickle.csv"), lambda_logs)
    # The ranged path was taken: consecutive 1 MiB ranges from the first (the read-ahead grows while the
    # reader waits, so not necessarily all four by the deadline), all but the first pinned to the ETag.
    asked = fault_server.requests_for("/ranged-trickle")
    mib = 1024 * 1024
    ranges = [f"bytes={start}-{min(start + mib, len(body)) - 1}" for start in range(0, len(body), mib)]
    assert len(asked) >= 2
    assert sorted(headers["range"] for headers in asked) == ranges[:len(asked)]
    assert [headers.get("if-match") for headers in asked].count('"v1"') == len(asked) - 1
    assert fault_server.max_active >= 2  # ranges in flight at once
    # No range is left downloading: every connection is closed soon after the call returned.
    stopped_by = time.monotonic() + 3.0
    while fault_server.active and time.monotonic() < stopped_by:
        time.sleep(0.05)
    assert fault_server.active == 0


@pytest.mark.parametrize("script", [Script(body=JSON_LAYOUT, delay=30.0),
                                    Script(body=JSON_LAYOUT, trickle=(1, 0.5))], ids=["silent", "trickle"])
def test_the_metadata_fetch_is_bounded_by_the_deadline(stack: Stack, fault_server, script: Script) -> None:
    url = fault_server.url("/metadata", script)
    response, took = invoke_with_budget(with_metadata(stack, url), budget_s=6.0)
    assert response.status == 504, response.body
    assert response.body["error"]["code"] == "DEADLINE_EXCEEDED"
    assert took < 6.0, took
    assert_nothing_landed(stack)


# --- size is bounded -----------------------------------------------------------------------------

def _wide_layout(columns: int, name_chars: int = 8) -> bytes:
    return json.dumps([{"columnName": f"c{i:0{name_chars - 1}d}",
                        "dataType": "NUMERIC" if i % 2 else "CHARACTER"}
                       for i in range(columns)]).encode()


def test_a_layout_over_the_column_limit_is_a_422(stack: Stack, monkeypatch) -> None:
    monkeypatch.setenv("max_columns", "50")
    data_url, metadata_url = stack.stage(b"1\n", _wide_layout(51))
    response = invoke(api_gateway_event(webhook_payload(data_url, metadata_url, "wide.parquet")))
    assert response.status == 422, response.body
    assert "more than this deployment's limit of 50" in response.body["error"]["message"]
    assert_nothing_landed(stack)


def test_the_default_column_limit_refuses_one_column_more(stack: Stack) -> None:
    from transforms.ci360.layout import MAX_COLUMNS

    data_url, metadata_url = stack.stage(b"1\n", _wide_layout(MAX_COLUMNS + 1))
    response = invoke(api_gateway_event(webhook_payload(data_url, metadata_url, "wide.orc")))
    assert response.status == 422 and response.body["error"]["code"] == "INVALID_METADATA", response.body
    assert_nothing_landed(stack)


def test_a_metadata_file_over_its_limit_is_a_422_not_a_502(stack: Stack, monkeypatch) -> None:
    monkeypatch.setenv("metadata_max_kb", "1")
    data_url, metadata_url = stack.stage(DATA, _wide_layout(100))  # about 5 KB
    response = invoke(api_gateway_event(webhook_payload(data_url, metadata_url, "out.csv")))
    assert response.status == 422, response.body
    assert "larger than its limit of 1024 bytes" in response.body["error"]["message"]
    assert_nothing_landed(stack)


def test_a_wide_result_is_bounded_and_the_landing_still_succeeds(stack: Stack) -> None:
    """500 columns of 200-character names: the whole result would be about 230 KB (and 3,000 columns
    of them over DynamoDB's 400 KB item limit); what is returned and stored is cut to 64 KB and says so."""
    columns = 500
    layout = _wide_layout(columns, name_chars=200)
    row = ",".join(str(i) for i in range(columns)).encode() + b"\n"
    data_url, metadata_url = stack.stage(row * 3, layout)
    response = invoke(api_gateway_event(webhook_payload(data_url, metadata_url, "wide.parquet")))
    assert response.status == 200, response.body
    assert len(response.raw["body"]) <= 64 * 1024
    assert response.body["rows"] == 3 and response.body["columns"] == columns
    omitted = response.body["truncated"]["omitted"]
    assert omitted["columnNames"] + len(response.body["columnNames"]) == columns
    assert stack.target_keys() == ["wide.parquet"] and stack.pending_uploads() == []


@pytest.mark.parametrize("length", [3000, 1024 * 1024])
def test_an_overlong_identifier_is_a_400_and_is_never_echoed(stack: Stack, lambda_logs, length: int) -> None:
    data_url, metadata_url = stack.stage(DATA, JSON_LAYOUT)
    long_id = "o" * length
    payload = webhook_payload(data_url, metadata_url, "out.csv", occurrence_id=long_id)
    response = invoke(api_gateway_event(payload))
    assert response.status == 400, response.body
    assert {"field": "task.occurrenceId"} in response.body["error"]["details"]
    assert "o" * 300 not in lambda_logs.getvalue() + response.raw["body"]
    assert_nothing_landed(stack)


# --- no false success ----------------------------------------------------------------------------

HTML_PAGE = (b"<!DOCTYPE html>\n<html><head><title>Service Unavailable</title></head>"
             b"<body>Try later</body></html>\n")
XML_PAGE = b'<?xml version="1.0"?>\n<Error><Code>SlowDown</Code></Error>\n'


@pytest.mark.parametrize(("body", "content_type"), [
    (HTML_PAGE, "text/html; charset=utf-8"), (HTML_PAGE, "text/plain"), (HTML_PAGE, "binary/octet-stream"),
    (XML_PAGE, "application/octet-stream"), (b"<html><body>a,b,c</body></html>", "text/csv")])
def test_an_error_page_is_not_a_layout(stack: Stack, fault_server, body: bytes, content_type: str) -> None:
    url = fault_server.url("/metadata", Script(body=body, headers={"Content-Type": content_type}))
    response = invoke(api_gateway_event(with_metadata(stack, url)))
    assert response.status in (422, 502), response.body
    assert response.body["error"]["code"] in ("INVALID_METADATA", "SOURCE_ERROR")
    assert_nothing_landed(stack)


@pytest.mark.parametrize("content_type", ["text/html", "text/html; charset=UTF-8", "application/xml",
                                          "text/xml", "application/xhtml+xml"])
def test_a_data_body_that_says_it_is_a_web_page_is_refused(stack: Stack, fault_server,
                                                           content_type: str) -> None:
    url = fault_server.url("/data", Script(body=HTML_PAGE, headers={"Content-Type": content_type}))
    response = invoke(api_gateway_event(with_data(stack, url)))
    assert response.status == 502, response.body
    assert "web page" in response.body["error"]["message"]
    assert_nothing_landed(stack)


@pytest.mark.parametrize("data", [DATA, b"1,2,a,b\n"], ids=["larger-decoded", "smaller-decoded"])
def test_a_gzip_encoded_body_is_decoded_and_checked_against_its_wire_length(stack: Stack, fault_server,
                                                                           data: bytes) -> None:
    """A tiny body encodes larger than it decodes: decoded bytes compared with Content-Length failed."""
    encoded = gzip.compress(data)
    url = fault_server.url("/gz", Script(body=encoded, headers={"Content-Encoding": "gzip"}))
    response = invoke(api_gateway_event(with_data(stack, url, "decoded.csv")))
    assert response.status == 200, response.body
    assert stack.landed("decoded.csv") == HEADER + data


def test_a_gzip_encoded_body_without_its_trailer_is_an_error_not_a_truncated_success(stack: Stack,
                                                                                      fault_server) -> None:
    rows = b"".join(b"%d,%d,x%d@example.com,2021-01-01\n" % (i, i, i) for i in range(20_000))
    cut = gzip.compress(rows)[:-8]  # no CRC32 and length: the member never ends
    url = fault_server.url("/gz", Script(body=cut, headers={"Content-Encoding": "gzip"}))
    response = invoke(api_gateway_event(with_data(stack, url, "cut.csv")))
    assert response.status == 502, response.body
    assert "gzip trailer" in response.body["error"]["message"]
    assert_nothing_landed(stack)


@pytest.mark.parametrize("ranged", [False, True], ids=["plain-get", "ranged"])
@pytest.mark.parametrize("encoding", ["br", "deflate", "zstd", "gzip, br", "compress"])
def test_a_data_file_sent_with_another_content_encoding_is_refused_and_nothing_lands(
        stack: Stack, fault_server, lambda_logs, encoding: str, ranged: bool) -> None:
    """Only gzip is decoded here: any other encoding (or gzip followed by another) would land its
    encoded bytes as if they were the CSV, so it is refused before anything is written. ``ranged``:
    the object has an ETag and honours Range, so the refusal must also hold on the ranged path (a
    ranged answer with an encoding falls back to one plain GET, which is then checked)."""
    rows = b"".join(b"%d,%d,x%d@example.com,2021-01-01\n" % (i, i, i) for i in range(2_000))
    encoded = zlib.compress(rows)  # bytes that would land as the "CSV" if the encoding were ignored
    script = Script(body=encoded, headers={"Content-Encoding": encoding}, etag='"v1"' if ranged else None)
    url = fault_server.url("/encoded", script)
    payload = with_data(stack, url, "encoded.csv")
    response = invoke(api_gateway_event(payload))
    assert response.status == 502, response.body
    error = response.body["error"]
    assert error["code"] == "SOURCE_ERROR"
    assert f"Content-Encoding {encoding!r}" in error["message"] and "gzip is" in error["message"]
    assert error["details"] == [{"file": "data", "upstreamStatus": 200}]
    assert_nothing_landed(stack)
    assert_no_secret(json.dumps(response.body), lambda_logs.getvalue(), payload=payload)


@pytest.mark.parametrize(("status", "body"), [(206, DATA[:10]), (204, b"")])
def test_a_partial_or_empty_answer_to_a_plain_get_is_refused(stack: Stack, fault_server, status: int,
                                                             body: bytes) -> None:
    headers = {"Content-Range": f"bytes 0-9/{len(DATA)}"} if status == 206 else {}
    url = fault_server.url("/part", Script(status=status, body=body, headers=headers))
    response = invoke(api_gateway_event(with_data(stack, url)))
    assert response.status == 502, response.body
    assert f"({status}" in response.body["error"]["message"]
    assert response.body["error"]["details"] == [{"file": "data", "upstreamStatus": status}]
    assert_nothing_landed(stack)


def test_an_unterminated_quote_at_the_end_of_a_csv_passthrough_is_reported(stack: Stack) -> None:
    data = b'1,2,"never closed\n3,4,x,y\n5,6,z,w\n'
    data_url, metadata_url = stack.stage(data, JSON_LAYOUT)
    response = invoke(api_gateway_event(webhook_payload(data_url, metadata_url, "open.csv")))
    assert response.status == 422, response.body
    assert "never closed" in response.body["error"]["message"]
    assert response.body["error"]["details"] == [{"record": 1}]
    assert_nothing_landed(stack)


# --- no secret in any log ------------------------------------------------------------------------

@pytest.mark.parametrize("query", [
    "?&X-Amz-Signature=deadbeefsignature&X-Amz-Security-Token=SECRETTOKEN",
    "?versionId&X-Amz-Credential=AKIA%2F&X-Amz-Signature=deadbeefsignature",
    "?X-Amz-Algorithm=x'y&X-Amz-Security-Token=SECRETTOKEN&X-Amz-Signature=deadbeefsignature",
])
def test_no_query_string_reaches_any_log_at_any_level(stack: Stack, lambda_logs, caplog, refusing_port: int,
                                                      query: str) -> None:
    """urllib3's retry logger at DEBUG, a handler added after start-up (as the CLI or an operator's
    tooling adds one), the function's own JSON logs: none prints a query string."""
    late = io.StringIO()
    handler = logging.StreamHandler(late)
    handler.setFormatter(logging.Formatter("%(name)s %(levelname)s %(message)s"))
    root = logging.getLogger()
    caplog.set_level(logging.DEBUG)  # every logger at DEBUG (restored by caplog afterwards)
    root.addHandler(handler)
    try:
        payload = with_metadata(stack, f"http://127.0.0.1:{refusing_port}/metadata{query}")
        response = invoke(api_gateway_event(payload))
    finally:
        root.removeHandler(handler)
    assert response.status == 502, response.body
    assert "Incremented Retry" in late.getvalue()  # urllib3.util.retry did log, at DEBUG
    assert "Retrying" in caplog.text
    assert "X-Amz-Signature=<redacted>" in late.getvalue() or "?<redacted>" in late.getvalue()
    assert_no_secret(late.getvalue(), caplog.text, lambda_logs.getvalue(), json.dumps(response.raw),
                     payload=payload)


# --- safer defaults and stricter inputs ----------------------------------------------------------


def test_a_prefix_without_its_slash_cannot_be_escaped(stack: Stack, monkeypatch) -> None:
    monkeypatch.setenv("s3_key_prefix", "exports")
    data_url, metadata_url = stack.stage(DATA, JSON_LAYOUT)
    response = invoke(api_gateway_event(webhook_payload(data_url, metadata_url, "-x/y.csv")))
    assert response.status == 200, response.body
    assert stack.target_keys() == ["exports/-x/y.csv"]


@pytest.mark.parametrize("name", ["a//b.csv", "a\\b.csv", "..\\b.csv", "a\u202eb.csv", "a\u200bb.csv",
                                  "a\u2028b.csv", "a\u2029b.csv", "a\ufeffb.csv", "a\u2066b.csv"])
def test_keys_with_ambiguous_or_invisible_characters_are_refused(stack: Stack, name: str) -> None:
    data_url, metadata_url = stack.stage(DATA, JSON_LAYOUT)
    response = invoke(api_gateway_event(webhook_payload(data_url, metadata_url, name)))
    assert response.status == 400, response.body
    assert {"field": "sendParameters.s3_filename"} in response.body["error"]["details"]
    assert_nothing_landed(stack)


@pytest.mark.parametrize("value", [123, ["a.csv"], True, {"k": "a.csv"}])
def test_a_non_string_s3_filename_is_a_400(stack: Stack, value: Any) -> None:
    data_url, metadata_url = stack.stage(DATA, JSON_LAYOUT)
    payload = webhook_payload(data_url, metadata_url, "x.csv")
    payload["sendParameters"] = {"s3_filename": value}
    response = invoke(api_gateway_event(payload))
    assert response.status == 400, response.body
    assert "must be a string" in response.body["error"]["message"]
    assert_nothing_landed(stack)


def test_parameters_differing_only_by_whitespace_are_ambiguous(stack: Stack) -> None:
    data_url, metadata_url = stack.stage(DATA, JSON_LAYOUT)
    payload = webhook_payload(data_url, metadata_url, "one.csv")
    payload["sendParameters"]["s3_filename"] = "two.csv"
    response = invoke(api_gateway_event(payload))
    assert response.status == 400, response.body
    assert "ambiguous" in response.body["error"]["message"]
    assert_nothing_landed(stack)


def test_column_types_may_be_sent_as_a_json_object(stack: Stack, tmp_path) -> None:
    import duckdb
    import pyarrow.parquet as pq

    data_url, metadata_url = stack.stage(DATA, JSON_LAYOUT)
    payload = webhook_payload(data_url, metadata_url, "typed.parquet")
    payload["sendParameters"]["column_types"] = {"external_id": "bigint"}
    response = invoke(api_gateway_event(payload))
    assert response.status == 200, response.body
    assert response.body["schema"]["external_id"] == "bigint"
    path = tmp_path / "typed.parquet"
    path.write_bytes(stack.landed("typed.parquet"))  # the test's own copy; the connector never touches disk
    kinds = duckdb.sql(f"SELECT typeof(external_id) FROM read_parquet('{path}') LIMIT 1").fetchall()
    assert kinds == [("BIGINT",)]
    assert str(pq.read_schema(path).field("external_id").type) == "int64"


# --- memory at the column limit ------------------------------------------------------------------

CHILD = r"""
import json, sys
from tests.support.helpers import LambdaContext, api_gateway_event
from handler.webhook import handle
raw = handle(api_gateway_event(json.loads(sys.stdin.read())), LambdaContext())
hwm = next(int(line.split()[1]) for line in open("/proc/self/status") if line.startswith("VmHWM:"))
print("RESULT " + json.dumps({"status": raw["statusCode"], "body": json.loads(raw["body"]), "vmhwm_kb": hwm}))
"""


@pytest.mark.parametrize("key", ["wide.orc", "wide.parquet"])
def test_memory_stays_under_the_function_memory_at_the_column_limit(stack: Stack, key: str) -> None:
    """2,000 columns into .orc peaked at 1.15 GB; at the default limit (1,000) the webhook, run in a
    fresh process under its deployed name, stays under its 1024 MB (VmHWM, the process's peak)."""
    import os
    import subprocess
    import sys

    from transforms.ci360.layout import MAX_COLUMNS

    columns, rows = MAX_COLUMNS, 30000  # ORC plateaus here (607 MB at 90,000 rows)
    line = ",".join(str(i * 7) if i % 2 else f"v{i}" for i in range(columns)).encode() + b"\n"
    data_url, metadata_url = stack.stage(line * rows, _wide_layout(columns))
    payload = webhook_payload(data_url, metadata_url, key)
    env = {**os.environ, "AWS_LAMBDA_FUNCTION_NAME": "ci360-s3-connector-test-webhook"}
    done = subprocess.run([sys.executable, "-c", CHILD], input=json.dumps(payload), capture_output=True,
                          text=True, env=env, timeout=300, check=False)
    result = json.loads(next(out for out in done.stdout.splitlines() if out.startswith("RESULT "))[7:])
    assert result["status"] == 200, result["body"]
    assert result["body"]["rows"] == rows and result["body"]["columns"] == columns
    peak_mb = result["vmhwm_kb"] / 1024
    print(f"{key}: {columns} columns x {rows} rows, VmHWM {peak_mb:.0f} MB")
    assert peak_mb < 1024 * 0.8, peak_mb  # a fifth kept for the runtime and the rest of the container
    assert stack.target_keys() == [key] and stack.pending_uploads() == []


# --- the worker and the stored result ------------------------------------------------------------

def test_a_worker_whose_source_stalls_mid_upload_stops_on_time_and_records_the_failure(
        async_stack: AsyncStack, fault_server, monkeypatch) -> None:
    """6 MB at once (a part goes up), then silence: the worker stops before its time limit, aborts the
    multipart upload and records the job as failed, instead of being killed with it `running`."""
    from handler import worker

    monkeypatch.setenv("processing_mode", "async")
    monkeypatch.setenv("part_size_mb", "5")
    monkeypatch.setenv("deadline_margin_s", "3")
    stack = async_stack.stack
    body = b"".join(b"%08d,%d,someone%d@example.com,2021-01-01\n" % (i, i, i) for i in range(400_000))
    url = fault_server.url("/stall", Script(body=body, trickle=(6_000_000, 60.0)))
    payload = with_data(stack, url, "stalled.csv")
    assert invoke(api_gateway_event(payload)).status == 202
    started = time.monotonic()
    worker.handle(async_stack.sqs_event(), ClockedContext(10.0))  # a refusal: consumed, not raised
    took = time.monotonic() - started
    assert took < 10.0, took
    record = get_job(payload["task"]["occurrenceId"])[1]
    assert record["status"] == "failed" and record["error"]["code"] == "DEADLINE_EXCEEDED", record
    assert record["error"]["details"][0]["bytes_done"] >= 5 << 20  # it did stop mid-file
    assert_nothing_landed(stack)


def test_a_wide_result_is_bounded_in_the_job_record_and_the_idempotency_record(
        async_stack: AsyncStack) -> None:
    """The widest layout allowed, with the longest names allowed: the result would be about 400 KB, the
    size of a DynamoDB item; it is stored cut to 64 KB, and a repeated call gets the same answer."""
    from transforms.ci360.layout import MAX_COLUMNS, MAX_NAME_CHARS

    stack = async_stack.stack
    row = ",".join(str(i) for i in range(MAX_COLUMNS)).encode() + b"\n"
    data_url, metadata_url = stack.stage(row * 2, _wide_layout(MAX_COLUMNS, name_chars=MAX_NAME_CHARS))
    payload = webhook_payload(data_url, metadata_url, "widest.parquet")
    first = invoke(api_gateway_event(payload))
    assert first.status == 200, first.body
    assert len(first.raw["body"]) <= 64 * 1024 and first.body["truncated"]["omitted"]["columnNames"] > 0
    status, record = get_job(payload["task"]["occurrenceId"])
    assert status == 200 and record["status"] == "succeeded", record
    assert record["result"]["truncated"] == first.body["truncated"]
    second = invoke(api_gateway_event(payload))  # answered from the idempotency record
    assert second.status == 200 and second.body == first.body
    assert async_stack.versions("widest.parquet") == 1 and stack.pending_uploads() == []
