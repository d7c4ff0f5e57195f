"""The finalizer: assemble what the ranges landed, verify it, register it, record the job, clean up.

CSV family and JSON Lines: ONE object at the key, composed inside S3 (``assemble``). Parquet and ORC:
one complete file per range beside the key (``naming.part_object``), each composed the same way from
its range object (so each is conditional and checksum-verified too); a table over the key's folder
reads them all. With ``overwrite`` true, what an earlier landing left at the key (the object itself, or
another fan-out's files for it) is removed once the new files are in place, so the folder holds this
landing alone.

Run again after it succeeded (a Step Functions retry), it answers with the recorded result.
"""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from aws_lambda_powertools import Logger

from transforms import SERVICE_NAME
from transforms.aws import SDK_ERRORS
from transforms.ci360.layout import parse_layout
from transforms.ci360.payload import Job
from transforms.errors import ConflictError, SinkError
from transforms.fanout.assemble import Assembled, Piece, assemble
from transforms.fanout.checks import resolve
from transforms.fanout.cleanup import clear_staging, remove_keys
from transforms.fanout.errors import RangesIncomplete
from transforms.fanout.naming import (
    COLUMNAR_OBJECTS,
    OWNER_METADATA,
    is_part_of,
    owner_tag,
    part_object,
    range_object,
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

ASSEMBLERS = 4  # Parquet/ORC objects composed at once


def _pieces(state: dict[str, Any], manifests: list[dict[str, Any]]) -> list[Piece]:
    return [Piece(range_object(state["staging"], int(m["index"])), int(m["bytes"]), m["crc32"], m["etag"])
            for m in manifests]


def finalize(state: dict[str, Any], settings: Settings, services: Services) -> dict[str, Any]:
    s3, identity = services.s3, state["job"]
    store = services.job_store(settings)
    if store:
        record = store.get(identity["occurrenceId"])
        if record and record.get("status") == "succeeded" and record.get("result"):
            clear_staging(s3, identity["bucket"], state["staging"])  # a retry after success: just tidy up
            return record["result"]
    resolution = resolve(state, s3)
    if resolution.redo or resolution.fallback:
        raise RangesIncomplete("the finalizer was reached with ranges still to redo or unproven: "
                               + (resolution.fallback or f"{len(resolution.redo)} ranges to redo"))
    if resolution.error is not None:
        raise resolution.error
    job, raw_layout = load_job(s3, state)
    layout = parse_layout(raw_layout, settings.max_columns)
    schema = build_schema(layout, job.column_types)
    fmt = format_named(state["format"])
    manifests = resolution.manifests
    extra = {"ContentType": fmt.content_type, "Metadata": {OWNER_METADATA: owner_tag(state["staging"])},
             **encryption(settings)}
    pieces = _pieces(state, manifests)
    try:
        if fmt.name in COLUMNAR_OBJECTS:
            landed = _land_objects(s3, job, fmt, pieces, extra)
        else:
            landed = [assemble(s3, job.bucket, job.key, pieces, extra_args=extra,
                               if_none_match=not job.overwrite)]
    except SinkError as exc:
        if not job.overwrite and exc.s3_code in ("PreconditionFailed", "ConditionalRequestConflict"):
            raise ConflictError(f"s3://{job.bucket}/{job.key} already exists and overwrite is false",
                                [{"field": "sendParameters.overwrite", "bucket": job.bucket, "key": job.key}]
                                ) from None
        raise
    if fmt.name in COLUMNAR_OBJECTS and job.overwrite:
        _remove_earlier(s3, job, fmt, {item.key for item in landed})
    result = _result(state, settings, services, job, fmt, schema, manifests, resolution, landed)
    if store:
        store.succeeded(job, result)
    clear_staging(s3, job.bucket, state["staging"])
    logger.info("fan-out landed", extra={k: v for k, v in result.items() if k not in ("url", "objects")})
    return result


def _land_objects(s3: Any, job: Job, fmt: Format, pieces: list[Piece],
                  extra: dict[str, Any]) -> list[Assembled]:
    """One object per range; if any fails, the ones made here are removed before the error is raised."""
    names = [part_object(job.key, fmt, index, len(pieces)) for index in range(len(pieces))]
    made: list[Assembled] = []
    failure: BaseException | None = None
    with ThreadPoolExecutor(ASSEMBLERS, thread_name_prefix="assemble") as pool:
        futures = [pool.submit(assemble, s3, job.bucket, name, [piece], extra_args=extra,
                               if_none_match=not job.overwrite)
                   for name, piece in zip(names, pieces, strict=True)]
        for future in futures:
            try:
                made.append(future.result())
            except BaseException as exc:  # noqa: BLE001 - the first failure is raised after the cleanup
                failure = failure or exc
    if failure is not None:
        try:
            remove_keys(s3, job.bucket, [item.key for item in made])
        except SinkError as exc:
            logger.error("could not remove the objects of a failed fan-out", extra={"error": exc.message})
        raise failure
    return made


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
            manifests: list[dict[str, Any]], resolution: Any, landed: list[Assembled]) -> dict[str, Any]:
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
                      "bytesCarried": sum(item.carried for item in landed)}
    return bound_result(body)
