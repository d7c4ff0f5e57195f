"""One job stopped by its deadline must not fail the next job in the same warm container (issue 20 §2).

The webhook handler keeps its HTTP pool for the container's life, and every presigned URL of a CI360
tenant shares one S3 host. Here both jobs run through the handler in this process, their files on the
same fault server (127.0.0.1, one port): the first job's data trickles (or goes silent) until the
deadline stops it; the second job's metadata and data come from that same host:port and must land
promptly, well within the read timeout a reused half-read connection would hang for.
"""

from __future__ import annotations

import json
import time
from typing import Any

import pytest

from devstack.localstack import webhook_payload
from tests.support.faultserver import Script
from tests.support.helpers import (
    DATA,
    HEADER,
    JSON_LAYOUT,
    ClockedContext,
    Response,
    Stack,
    api_gateway_event,
    invoke,
)

MIB = 1024 * 1024
PROMPT_S = 10.0  # the second landing's bound: a bound on a wait, not a benchmark


def invoke_with_budget(payload: dict[str, Any], budget_s: float) -> Response:
    from handler.webhook import handle

    raw = handle(api_gateway_event(payload), ClockedContext(budget_s))
    return Response(raw["statusCode"], json.loads(raw["body"]), raw)


SLOW = DATA * 50_000  # 8.35 MB: eight ranges of 1 MiB


@pytest.mark.parametrize(("connections", "script"), [
    # A byte a second: after the deadline's 5 s of evidence the projected finish is hopeless, and the run
    # stops right after a byte came, the connection quiet until the next (as a throttled source's is).
    ("1", Script(body=SLOW, etag='"v1"', trickle=(1, 1.0))),
    # The first range comes at once, the next ones answer and then send nothing: after 5 s of waiting
    # for range 1 the projection stops the reader, with two ranges in flight (each read bounded by
    # the deadline, 20 s further on).
    ("3", Script(body=SLOW, etag='"v1"', hold=frozenset(range(MIB, len(SLOW), MIB)))),
], ids=["single-stream-trickle", "ranged-silent"])
def test_a_landing_after_a_deadline_stopped_download_from_the_same_host_lands_promptly(
        stack: Stack, fault_server, monkeypatch: pytest.MonkeyPatch, connections: str,
        script: Script) -> None:
    monkeypatch.setenv("read_timeout", "30")
    monkeypatch.setenv("download_connections", connections)
    monkeypatch.setenv("download_range_mb", "1")
    slow = fault_server.url("/slow.csv", script)
    first_layout = fault_server.url("/slow_metadata.json", Script(body=JSON_LAYOUT))
    first = invoke_with_budget(webhook_payload(slow, first_layout, "slow.csv"), budget_s=30.0)
    assert first.status == 504 and first.body["error"]["code"] == "DEADLINE_EXCEEDED", first.body
    # Closed by the client when the call ended, not left to time out (20 s more here) or to be reused.
    fault_server.wait_for(lambda: all(a.client_left for a in fault_server.answers_for("/slow.csv")
                                      if not a.complete), "the stopped download's connections closed",
                          timeout=5.0)

    data = DATA * 1000
    data_url = fault_server.url("/next.csv", Script(body=data, etag='"v2"'))
    layout_url = fault_server.url("/next_metadata.json", Script(body=JSON_LAYOUT))
    started = time.monotonic()
    second = invoke(api_gateway_event(webhook_payload(data_url, layout_url, "next.csv")))
    took = time.monotonic() - started
    assert second.status == 200, second.body
    assert took < PROMPT_S, took
    assert stack.landed("next.csv") == HEADER + data
    assert stack.target_keys() == ["next.csv"]  # and nothing of the stopped job
    assert stack.pending_uploads() == []
