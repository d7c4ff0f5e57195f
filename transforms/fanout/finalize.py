"""The finalizer: complete what the copy workers assembled, verify it, register it, record the job, clean up.

CSV family and JSON Lines: ONE object at the key, composed inside S3. Parquet and ORC: one complete file
per range beside the key (``naming.part_object``), each composed the same way from its range object (so
each is conditional and checksum-verified too); a table over the key's folder reads them all. The parts
were planned by PrepareAssembly and copied by the CopyParts workers (``assembly.py``); here each target's
upload is completed from S3's own list of its parts (``assemble.complete``: every planned part number,
each of its planned size), with the whole object's CRC32 sent and verified. With ``overwrite`` true,
what an earlier landing left at the key (the object itself, or another fan-out's files for it) is
removed once the new files are in place, so the folder holds this landing alone.

Run again after it succeeded (a Step Functions retry), it answers with the recorded result; run again
after S3 completed an upload but before the job was recorded, it recognises its own object (owner
metadata, CRC32) and carries on.
"""

from __future__ import annotations

import dataclasses
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from aws_lambda_powertools import Logger

from transforms import SERVICE_NAME
from transforms.aws import SDK_ERRORS
from transforms.ci360.layout import parse_layout
from transforms.ci360.payload import Job
from transforms.errors import ConflictError, SinkError
from transforms.fanout.assemble import Assembled, complete, put_empty
from transforms.fanout.assembly import STARTERS, owner, part_sizes, read_plan
from transforms.fanout.checks import proven
from transforms.fanout.cleanup import clear_staging, remove_keys
from transforms.fanout.naming import (
    COLUMNAR_OBJECTS,
    is_part_of,
    split_extension,
)
from transforms.fanout.range_landing import load_job
from transforms.formats.registry import Format, format_named
from transforms.jobs.pipeline import (
    Result,
    bound_result,
    encryption,
    register,
    result_url,
    warn_line_breaks,
)
from transforms.jobs.services import Services
from transforms.schema.columns import build_schema
from transforms.settings import Settings
from transforms.sinks.s3 import s3_failure

logger = Logger(service=SERVICE_NAME, child=True)


def finalize(state: dict[str, Any], settings: Settings, services: Services) -> dict[str, Any]:
    s3, identity = services.s3, state["job"]
    store = services.job_store(settings)
    if store:
        record = store.get(identity["occurrenceId"])
        if record and record.get("status") == "succeeded" and record.get("result"):
            clear_staging(s3, identity["bucket"], state["staging"])  # a retry after success: just tidy up
            return record["result"]
    resolution = proven(state, s3, "the finalizer")
    job, raw_layout = load_job(s3, state)
    layout = parse_layout(raw_layout, settings.max_columns)
    schema = build_schema(layout, job.column_types)
    fmt = format_named(state["format"])
    manifests = resolution.manifests
    plan = read_plan(s3, job.bucket, state["staging"])
    try:
        landed = _complete_all(s3, job, fmt, plan, state["staging"], settings)
    except SinkError as exc:
        if not job.overwrite and exc.s3_code in ("PreconditionFailed", "ConditionalRequestConflict"):
            raise ConflictError(f"s3://{job.bucket}/{job.key} already exists and overwrite is false",
                                [{"field": "sendParameters.overwrite", "bucket": job.bucket, "key": job.key}]
                                ) from None
        raise
    if fmt.name in COLUMNAR_OBJECTS and job.overwrite:
        _remove_earlier(s3, job, fmt, {item.key for item in landed})
    result = _result(state, settings, services, job, fmt, schema, manifests, resolution, landed, plan)
    if store:
        store.succeeded(job, result)
    clear_staging(s3, job.bucket, state["staging"])
    logger.info("fan-out landed", extra={k: v for k, v in result.items() if k not in ("url", "objects")})
    return result


def _complete_all(s3: Any, job: Job, fmt: Format, plan: dict[str, Any], staging: str,
                  settings: Settings) -> list[Assembled]:
    """Every planned target completed from the parts the CopyParts workers copied (``STARTERS`` at once).
    A failure leaves the uploads pending: a retry of this step completes them, or Abandon aborts them and
    removes the objects completed before it (they carry this fan-out's owner metadata)."""
    mine = owner(staging)
    extra = {"ContentType": fmt.content_type, "Metadata": mine, **encryption(settings)}

    def one(target: dict[str, Any]) -> Assembled:
        if target["upload"] is None:
            return put_empty(s3, job.bucket, target["key"], extra_args=extra, if_none_match=not job.overwrite)
        sizes = part_sizes(target)
        done = complete(s3, job.bucket, target["key"], target["upload"], sizes, target["crc32"], mine,
                        if_none_match=not job.overwrite)
        return dataclasses.replace(done, parts=len(sizes), carried=int(target["carried"]))

    with ThreadPoolExecutor(min(STARTERS, len(plan["targets"])), thread_name_prefix="complete") as pool:
        return list(pool.map(one, plan["targets"]))


def _remove_earlier(s3: Any, job: Job, fmt: Format, keep: set[str]) -> None:
    """The key's own object (a one-function landing) and another fan-out's files for the key."""
    stem, _ = split_extension(job.key, fmt)
    stale: list[str] = []
    try:
        for page in s3.get_paginator("list_objects_v2").paginate(Bucket=job.bucket, Prefix=stem):
            stale += [item["Key"] for item in page.get("Contents", []) if item["Key"] not in keep
                      and (item["Key"] == job.key or is_part_of(item["Key"], job.key, fmt))]
    except SDK_ERRORS as exc:
        raise s3_failure(exc, "list what an earlier landing left at the key") from None
    if stale:
        logger.info("removing an earlier landing's objects", extra={"objects": len(stale), "key": job.key})
        remove_keys(s3, job.bucket, stale)


def _result(state: dict[str, Any], settings: Settings, services: Services, job: Job, fmt: Format, schema: Any,
            manifests: list[dict[str, Any]], resolution: Any, landed: list[Assembled],
            plan: dict[str, Any]) -> dict[str, Any]:
    if fmt.typed:
        rows = sum(int(m.get("rows") or 0) for m in manifests)
        line_breaks = None
    else:
        rows = resolution.counts.records
        line_breaks = resolution.counts.records_with_line_breaks
    bad_values: dict[str, int] = {}
    for manifest in manifests:
        for column, count in (manifest.get("badValues") or {}).items():
            bad_values[column] = bad_values.get(column, 0) + int(count)
    single = len(landed) == 1 and landed[0].key == job.key
    catalog = warn_line_breaks(register(services.glue, job, settings, schema, fmt.name), line_breaks)
    url, url_error = result_url(services.s3, job, settings) if single else (None, None)
    result = Result(bucket=job.bucket, key=job.key, format=fmt.name, rows=rows, columns=len(schema.fields),
                    bytes_read=int(state["source"]["size"]), bytes_written=sum(item.size for item in landed),
                    seconds=time.time() - float(state.get("startedAt") or time.time()),
                    occurrence_id=job.occurrence_id, crc32=landed[0].crc32,
                    verified=all(item.verified for item in landed),
                    url=url, url_error=url_error,
                    schema=schema if fmt.typed else None, bad_values=bad_values, catalog=catalog,
                    records_with_line_breaks=line_breaks)
    body = result.to_json()
    if not single:  # one checksum per object, each in "objects"
        body["checksum"] = {"algorithm": "CRC32", "type": "FULL_OBJECT", "perObject": True,
                            "verified": result.verified}
        if not result.verified:
            body["checksum"]["warning"] = "S3 returned no checksum for some objects: see each object's"
    body["objects"] = [{"key": item.key, "bytes": item.size,
                        "checksum": {"algorithm": "CRC32", "type": "FULL_OBJECT", "value": item.crc32,
                                     "verified": item.verified}} for item in landed]
    body["fanout"] = {"ranges": len(manifests), "rangeBytes": state.get("rangeBytes"),
                      "redone": sum(1 for m in manifests if int(m.get("startState", 0)) == 1),
                      "partsCarried": sum(1 for item in landed if item.carried),
                      "bytesCarried": sum(item.carried for item in landed),
                      "copyBatches": len(plan["batches"]),
                      "parts": sum(len(target["parts"]) for target in plan["targets"])}
    return bound_result(body)
