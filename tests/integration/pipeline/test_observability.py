"""Metrics (CloudWatch embedded metric format on stdout) and progress lines, as an operator sees them."""

from __future__ import annotations

import json

import pytest

from devstack.localstack import webhook_payload
from tests.support.helpers import DATA, JSON_LAYOUT, Stack, api_gateway_event, big_audience, invoke


def emf_documents(text: str) -> list[dict]:
    documents = []
    for line in text.splitlines():
        if line.startswith("{") and '"_aws"' in line:
            documents.append(json.loads(line))
    return documents


def test_a_landing_publishes_rows_bytes_duration_and_throughput(stack: Stack, capsys) -> None:
    data_url, metadata_url = stack.stage(DATA, JSON_LAYOUT)
    assert invoke(api_gateway_event(webhook_payload(data_url, metadata_url, "m.csv.gz"))).status == 200
    documents = emf_documents(capsys.readouterr().out)
    landing = next(d for d in documents if "Rows" in d)
    assert landing["Rows"] == [4] and landing["BytesRead"] == [len(DATA)] and landing["format"] == "csv.gz"
    assert landing["Duration"][0] > 0 and landing["Throughput"][0] > 0
    names = {m["Name"] for m in landing["_aws"]["CloudWatchMetrics"][0]["Metrics"]}
    assert names >= {"Rows", "BytesRead", "BytesWritten", "Duration", "Throughput"}


def test_a_failure_publishes_its_cause(stack: Stack, capsys) -> None:
    data_url, metadata_url = stack.stage(DATA, b"[]")
    assert invoke(api_gateway_event(webhook_payload(data_url, metadata_url, "m.csv"))).status == 422
    failure = next(d for d in emf_documents(capsys.readouterr().out) if "Failures" in d)
    assert failure["Failures"] == [1] and failure["cause"] == "INVALID_METADATA"


def test_progress_lines_report_bytes_percent_rate_and_eta(stack: Stack, lambda_logs,
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("progress_interval_s", "0.000001")
    data = big_audience(50_000)
    data_url, metadata_url = stack.stage(data, JSON_LAYOUT)
    assert invoke(api_gateway_event(webhook_payload(data_url, metadata_url, "p.csv"))).status == 200
    lines = [json.loads(line) for line in lambda_logs.getvalue().splitlines()]
    progress = [line for line in lines if line["message"] == "progress"]
    assert progress, "no progress line was logged"
    last = progress[-1]
    assert last["total_bytes"] == len(data) and 0 < last["percent"] <= 100
    assert {"bytes_done", "mb_per_s", "eta_seconds"} <= set(last)
