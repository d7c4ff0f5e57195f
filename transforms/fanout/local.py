"""The whole fan-out in one process, in the state machine's order: plan, every range, check (and redo),
prepare the assembly, every copy batch, finalize; abandon on any failure. For tests and local runs; the
deployed order is the state machine's (``serverless.yml``), which calls the same functions."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from transforms.ci360.payload import Job
from transforms.fanout.abandon import abandon
from transforms.fanout.assembly import copy_parts, prepare_assembly
from transforms.fanout.checks import check_ranges
from transforms.fanout.cleanup import clear_staging
from transforms.fanout.finalize import finalize
from transforms.fanout.plan import plan
from transforms.fanout.range_landing import land_range
from transforms.jobs.services import Services
from transforms.settings import Settings

RangeLander = Callable[[dict[str, Any], dict[str, Any], Settings, Services], dict[str, Any]]
Copier = RangeLander  # the same shape: (state, item, settings, services)


def catch(exc: BaseException) -> dict[str, str]:
    """A Lambda failure as a Step Functions Catch hands it on: ``{"Error", "Cause"}``."""
    return {"Error": type(exc).__name__,
            "Cause": json.dumps({"errorType": type(exc).__name__,
                                 "errorMessage": getattr(exc, "message", str(exc))})}


def assemble_in_process(state: dict[str, Any], settings: Settings, services: Services,
                        copy: Copier = copy_parts) -> dict[str, Any]:
    """PrepareAssembly, then every CopyParts batch (the Map's items) in order; PrepareAssembly's answer."""
    prepared = prepare_assembly(state, settings, services)
    for item in prepared["batches"]:
        copy(state, item, settings, services)
    return prepared


def land_every_range(state: dict[str, Any], settings: Settings, services: Services,
                     land: RangeLander = land_range) -> dict[str, Any]:
    """LandRanges, then CheckRanges and LandRangesAgain until nothing is left to redo: CheckRanges' last
    answer (``"fallback"`` in it when the job must go to one function)."""
    for item in state["ranges"]:
        land(state, item, settings, services)
    while True:
        checked = check_ranges(state, settings, services)
        if not checked["redo"]:
            return checked
        for item in checked["redo"]:
            land(state, item, settings, services)


def run_in_process(job: Job, settings: Settings, services: Services,
                   land: RangeLander = land_range, copy: Copier = copy_parts) -> dict[str, Any]:
    """The result of ``finalize``, or ``plan``'s / ``check_ranges``' ``{"fanout": False, "reason"}``."""
    state = plan(job, settings, services)
    if not state["fanout"]:
        return state
    try:
        checked = land_every_range(state, settings, services, land)
        if checked.get("fallback"):
            clear_staging(services.s3, job.bucket, state["staging"])
            return {"fanout": False, "reason": checked["fallback"], "job": state["job"]}
        assemble_in_process(state, settings, services, copy)
        return finalize(state, settings, services)
    except Exception as exc:
        abandon(state, catch(exc), settings, services)
        raise
