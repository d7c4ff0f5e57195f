"""A fan-out's outcome, told once: its finalizer tells CI360 (the fake gateway, the JWT verified with
joserfc) and EventBridge (a rule routing to a queue this test reads) that the audience landed, its abandon
step that it failed; the webhook's 202 tells nothing. Run through the packaged state machine locally, as
tests/integration/fanout/test_state_machine.py runs it."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from devstack.ci360_gateway import FakeCI360Gateway
from tests.integration.fanout.test_state_machine import (
    ARN_SETTING,
    MIB,
    audience,
    executions,
    run_state_machine,
    start,
)
from tests.integration.outcomes.test_outcomes import TRACKING, Bus, told
from tests.support.helpers import AsyncStack

pytestmark = pytest.mark.package


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
