"""The plan: read the data file's length and ETag, check the layout, and list the ranges to land.

Everything that can be refused is refused here, before any range runs: a bad layout (422), an existing
key with ``overwrite=false`` (409). The job itself (with its presigned URLs) and the layout go into the
staging folder; the state the state machine carries holds neither.
"""

from __future__ import annotations

import math
import time
from typing import Any

from aws_lambda_powertools import Logger

from transforms import SERVICE_NAME
from transforms.aws import SDK_ERRORS
from transforms.ci360.layout import parse_layout
from transforms.ci360.payload import Job
from transforms.errors import ConflictError
from transforms.fanout.naming import COLUMNAR_OBJECTS, is_part_of, split_extension, staging_prefix
from transforms.fanout.stored_job import identifiers, read_job, store_job
from transforms.formats.registry import format_for_key
from transforms.jobs.pipeline import refuse_existing
from transforms.jobs.services import Services
from transforms.progress import Deadline
from transforms.redact import redact_url
from transforms.schema.columns import build_schema
from transforms.settings import MIB, Settings
from transforms.sinks.s3 import s3_failure
from transforms.sources.http import HttpSource, set_read_timeout

logger = Logger(service=SERVICE_NAME, child=True)

# At most this many ranges (larger files get larger ranges): every Step Functions state, the Map's input
# included, is capped at 256 KiB, and 2,000 items of ~60 bytes is ~120 KB. (S3's 10,000 parts are far.)
# A 5 TiB file then has ranges of ~2.6 GiB: about a minute of the slowest format in one range function.
MAX_RANGES = 2_000
DEFAULT_RANGE_BYTES = 1024 * MIB
DEFAULT_MIN_BYTES = 20480 * MIB


def range_bytes(settings: Settings) -> int:
    return int(getattr(settings, "fanout_range_bytes", DEFAULT_RANGE_BYTES))


def min_bytes(settings: Settings) -> int:
    return int(getattr(settings, "fanout_min_bytes", DEFAULT_MIN_BYTES))


def probe(http: HttpSource, url: str, deadline: Deadline | None = None) -> tuple[int | None, str | None, str]:
    """(length, ETag, why not) of the data file from its first byte: a presigned GET URL allows no HEAD.

    A server that ignores ``Range``, gives no ETag (nothing to pin ranges to) or sends the body encoded
    (ranges of an encoded body are not slices of the file) cannot be fanned out."""
    response = http._get(url, "data", {"Range": "bytes=0-0"}, deadline)
    try:
        total = (response.headers.get("Content-Range") or "").rpartition("/")[2]
        etag = response.headers.get("ETag")
        if response.status != 206 or not total.isdigit():
            return None, None, "the data file's server does not answer byte ranges"
        if response.headers.get("Content-Encoding"):
            return None, None, "the data file is sent with a Content-Encoding: its ranges are not its bytes"
        if not etag:
            return int(total), None, "the data file's server gives no ETag to pin the ranges to"
        return int(total), etag, ""
    finally:
        if response.status == 206:
            set_read_timeout(response, http.read_wait(deadline))
            response.drain_conn()
        else:
            response.close()
        response.release_conn()


def list_ranges(size: int, wanted: int) -> tuple[list[dict[str, int]], int]:
    """Consecutive ranges of ``wanted`` bytes (more when ``wanted`` would make over ``MAX_RANGES``)."""
    per = max(wanted, math.ceil(size / MAX_RANGES))
    count = max(1, math.ceil(size / per))
    return [{"index": i, "start": i * per, "end": min(size, (i + 1) * per)} for i in range(count)], per


def _refuse_earlier_parts(s3: Any, job: Job) -> None:
    """overwrite=false, Parquet/ORC: an earlier fan-out's files for the key count as the key existing
    (whatever their number: the conditional writes catch only the same names)."""
    fmt = format_for_key(job.key)
    if job.overwrite or fmt.name not in COLUMNAR_OBJECTS:
        return
    stem, _ = split_extension(job.key, fmt)
    try:
        listed = s3.list_objects_v2(Bucket=job.bucket, Prefix=stem, MaxKeys=1000).get("Contents", [])
    except SDK_ERRORS as exc:
        logger.warning("could not list the key's folder; the conditional writes will decide",
                       extra={"error": s3_failure(exc, "list the key's folder").message})
        return
    if any(is_part_of(item["Key"], job.key, fmt) for item in listed):
        raise ConflictError(f"s3://{job.bucket}/{job.key} already exists (as a fan-out's files) and "
                            "overwrite is false", [{"field": "sendParameters.overwrite", "bucket": job.bucket,
                                          "key": job.key}])


def plan(job: Job | dict[str, Any], settings: Settings, services: Services,
         deadline: Deadline | None = None) -> dict[str, Any]:
    """The execution's state (see FANOUT.md), or ``{"fanout": False, "reason": ...}`` for one function.

    ``job``: the Job, or the execution's input (``stored_job.identifiers``: the job itself is read from
    the staging folder, where the dispatcher stored it)."""
    started = time.time()
    if not isinstance(job, Job):
        job = read_job(services.s3, job)
    refuse_existing(services.s3, job)
    _refuse_earlier_parts(services.s3, job)
    raw = services.http.fetch(job.metadata_url, "metadata", settings.metadata_max_bytes, deadline=deadline)
    layout = parse_layout(raw, settings.max_columns)
    build_schema(layout, job.column_types)  # an override naming no column: 422 now, not in every range
    fmt = format_for_key(job.key)
    size, etag, why_not = probe(services.http, job.data_url, deadline)
    threshold = min_bytes(settings)
    reason = why_not
    if not reason and threshold <= 0:
        reason = "fan-out is off (fanout_min_mb is 0)"
    elif not reason and size is not None and size < threshold:
        reason = f"the data file ({size} bytes) is below fanout_min_mb ({threshold} bytes)"
    ranges, per = list_ranges(size or 0, range_bytes(settings))
    if not reason and len(ranges) < 2:
        reason = f"the data file ({size} bytes) fits in one range of {per} bytes"
    if reason:
        logger.info("landing in one function", extra={"reason": reason, "key": job.key})
        return {"fanout": False, "reason": reason, "job": identifiers(job)}
    staging = staging_prefix(job.occurrence_id, job.task_id, job.bucket, job.key)
    store_job(services.s3, job, settings, layout=raw)
    store = services.job_store(settings)
    if store:
        store.running(job, "fanout")
    logger.info("fanning out", extra={"data_url": redact_url(job.data_url), "bucket": job.bucket,
                                      "key": job.key, "format": fmt.name, "bytes": size,
                                      "ranges": len(ranges), "range_bytes": per})
    return {"fanout": True, "job": identifiers(job), "format": fmt.name,
            "source": {"size": size, "etag": etag}, "staging": staging, "rangeBytes": per,
            "rangeCount": len(ranges), "ranges": ranges, "startedAt": started}
