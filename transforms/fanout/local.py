"""The whole fan-out in one process, in the state machine's order: plan, every range, check (and redo),
finalize; abandon on any failure. For tests and local runs; the deployed order is the state machine's
(``serverless.yml``), which calls the same five functions."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from transforms.ci360.payload import Job
from transforms.fanout.abandon import abandon
from transforms.fanout.checks import check_ranges
from transforms.fanout.cleanup import clear_staging
from transforms.fanout.finalize import finalize
from transforms.fanout.plan import plan
from transforms.fanout.range_landing import land_range
from transforms.jobs.services import Services
from transforms.settings import Settings

RangeLander = Callable[[dict[str, Any], dict[str, Any], Settings, Services], dict[str, Any]]


def catch(exc: BaseException) -> dict[str, str]:
    """A Lambda failure as a Step Functions Catch hands it on: ``{"Error", "Cause"}``."""
    return {"Error": type(exc).__name__,
            "Cause": json.dumps({"errorType": type(exc).__name__,
                                 "errorMessage": getattr(exc, "message", str(exc))})}


def run_in_process(job: Job, settings: Settings, services: Services,
                   land: RangeLander = land_range) -> dict[str, Any]:
    """The result of ``finalize``, or ``plan``'s / ``check_ranges``' ``{"fanout": False, "reason"}``."""
    state = plan(job, settings, services)
    if not state["fanout"]:
        return state
    try:
        for item in state["ranges"]:
            land(state, item, settings, services)
        while True:
            checked = check_ranges(state, settings, services)
            if not checked["redo"]:
                break
            for item in checked["redo"]:
                land(state, item, settings, services)
        if checked.get("fallback"):
            clear_staging(services.s3, job.bucket, state["staging"])
            return {"fanout": False, "reason": checked["fallback"], "job": state["job"]}
        return finalize(state, settings, services)
    except Exception as exc:
        abandon(state, catch(exc), settings, services)
        raise
