"""One job, end to end: layout, source stream, format, S3 sink, result.

Everything the job needs comes in as arguments (clients included), so the same function serves the
webhook, a future queue worker, the CLI and the tests.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from aws_lambda_powertools import Logger

from transforms import SERVICE_NAME
from transforms.aws import SDK_ERRORS, aws_failure
from transforms.catalog.glue import register_table
from transforms.ci360.layout import Layout, parse_layout
from transforms.ci360.payload import Job
from transforms.errors import ConflictError, ConnectorError, SinkError
from transforms.formats.registry import Format, WriteContext, WriteOptions, format_for_key
from transforms.progress import Deadline, Progress, Snapshot
from transforms.redact import redact_url
from transforms.schema.columns import TypedSchema, build_schema
from transforms.settings import Settings, encryption_setting
from transforms.sinks.parts import PartPlan, refuse_too_large
from transforms.sinks.s3 import S3MultipartSink, s3_failure
from transforms.sources.http import HttpSource
from transforms.sources.ranged import open_data

logger = Logger(service=SERVICE_NAME, child=True)

METADATA_LIMIT = 1024 * 1024  # a layout of thousands of columns is still far below this
UNVERIFIED = ("the S3 store returned no checksum for the object: this CRC32 is of the bytes sent, "
              "not confirmed by the store")
# The result is returned to CI360 (Lambda's response limit is 6 MB), stored on the job record and in
# the idempotency record (DynamoDB's item limit is 400 KB): its per-column maps are cut to fit this.
RESULT_LIMIT_BYTES = 64 * 1024
_PER_COLUMN = ("columnNames", "schema", "unknownTypes", "badValues")


@dataclass(frozen=True)
class Result:
    bucket: str
    key: str
    format: str
    rows: int
    columns: int
    bytes_read: int
    bytes_written: int
    seconds: float
    occurrence_id: str
    crc32: str  # full-object CRC32 of what was written, base64, as S3 spells it
    verified: bool = False  # S3 returned this very checksum as the object's (see S3MultipartSink)
    url: str | None = None  # a presigned GET of the result, only when a TTL is configured
    url_error: dict[str, str] | None = None  # why that link is missing (it could not be signed)
    schema: TypedSchema | None = None  # set for typed formats: what the columns became
    bad_values: dict[str, int] = field(default_factory=dict)
    catalog: dict[str, Any] | None = None  # the Glue registration's outcome, when one is configured
    records_with_line_breaks: int | None = None  # CSV targets: records Athena's CSV tables would split

    def to_json(self) -> dict[str, Any]:
        body: dict[str, Any] = {
            "status": "succeeded",
            "occurrenceId": self.occurrence_id,
            "bucket": self.bucket,
            "key": self.key,
            "format": self.format,
            "rows": self.rows,
            "columns": self.columns,
            "bytesRead": self.bytes_read,
            "bytesWritten": self.bytes_written,
            "seconds": round(self.seconds, 3),
            "checksum": {"algorithm": "CRC32", "type": "FULL_OBJECT", "value": self.crc32,
                         "verified": self.verified},
        }
        if not self.verified:
            body["checksum"]["warning"] = UNVERIFIED
        if self.schema is not None:
            body["schema"] = self.schema.types()
            body["columnNames"] = self.schema.renamed()
            if self.schema.unknown_types:
                body["unknownTypes"] = dict(self.schema.unknown_types)
            body["badValues"] = dict(self.bad_values)
        if self.records_with_line_breaks is not None:
            body["recordsWithLineBreaks"] = self.records_with_line_breaks
        if self.catalog is not None:
            body["glue"] = self.catalog
        if self.url:
            body["url"] = self.url
        if self.url_error:
            body["urlError"] = self.url_error
        return bound_result(body)


def _json_size(value: Any) -> int:
    return len(json.dumps(value))  # ASCII (non-ASCII escaped), as the response and records carry it


def bound_result(body: dict[str, Any], limit: int = RESULT_LIMIT_BYTES) -> dict[str, Any]:
    """The result as it is returned and stored, within ``limit`` bytes of JSON.

    Small results are untouched. A wide layout's per-column maps (names, types, unknown types, bad
    value counts) are cut, in column order, to a fair share of what fits, and ``truncated`` says how
    many entries each lost: the object landed, so a large result must never turn into a failure.
    """
    if _json_size(body) <= limit:
        return body
    bounded = dict(body)
    maps = [name for name in _PER_COLUMN if isinstance(body.get(name), dict) and body[name]]
    for name in maps:
        bounded[name] = {}
    if isinstance(body.get("glue"), dict) and _json_size(body["glue"]) > limit // 8:
        glue = body["glue"]
        bounded["glue"] = {"registered": glue.get("registered"), "truncated": True}
    reserve = 200 + 60 * len(maps)  # the ``truncated`` summary itself
    share = max(0, (limit - _json_size(bounded) - reserve) // max(1, len(maps)))
    omitted: dict[str, int] = {}
    for name in maps:
        kept: dict[str, Any] = {}
        used = 2
        for key, value in body[name].items():
            cost = _json_size(key) + _json_size(value) + 4
            if used + cost > share:
                break
            kept[key] = value
            used += cost
        bounded[name] = kept
        if len(kept) < len(body[name]):
            omitted[name] = len(body[name]) - len(kept)
    bounded["truncated"] = {"reason": f"the result is cut to {limit} bytes; entries omitted per field",
                            "omitted": omitted}
    return bounded


def _log_progress(snapshot: Snapshot) -> None:
    logger.info("progress", extra=snapshot.to_json())


def fetch_layout(job: Job, http: HttpSource, deadline: Deadline | None = None,
                 settings: Settings | None = None) -> Layout:
    """The layout, fetched within the deadline and the deployment's size and column limits."""
    logger.info("fetching metadata", extra={"metadata_url": redact_url(job.metadata_url)})
    limit = settings.metadata_max_bytes if settings else METADATA_LIMIT
    raw = http.fetch(job.metadata_url, "metadata", limit, deadline=deadline)
    return parse_layout(raw, settings.max_columns) if settings else parse_layout(raw)


def encryption(settings: Settings) -> dict[str, str]:
    """The encryption headers of every object (README, "Encryption").

    By default none: S3 then applies the bucket's default encryption (SSE-S3 at least), so a bucket
    whose default is SSE-KMS under the customer's key keeps it, and a bucket policy requiring aws:kms
    admits the write. Asking for AES256 there would silently downgrade the encryption.
    """
    chosen = encryption_setting(settings.encryption, settings.kms_key_id)
    if chosen == "sse-kms":
        return {"ServerSideEncryption": "aws:kms", "SSEKMSKeyId": str(settings.kms_key_id)}
    if chosen == "sse-s3":
        return {"ServerSideEncryption": "AES256"}
    return {}


def _conflict(job: Job) -> ConflictError:
    return ConflictError(f"s3://{job.bucket}/{job.key} already exists and overwrite is false",
                         [{"field": "sendParameters.overwrite", "bucket": job.bucket, "key": job.key}])


def refuse_existing(s3: Any, job: Job) -> None:
    """overwrite=false: refuse an existing key with one HEAD, before anything is streamed.

    Cheap, and it spares transferring gigabytes for nothing; the conditional write at the end
    (``IfNoneMatch``) is what makes the refusal certain, so when the HEAD cannot tell (no
    s3:GetObject or s3:ListBucket on the key answers 403), the run goes on and lets S3 decide.
    """
    if job.overwrite:
        return
    try:
        s3.head_object(Bucket=job.bucket, Key=job.key)
    except SDK_ERRORS as exc:
        failure = aws_failure(exc)
        if failure.http_status == 404 or failure.code in ("404", "NoSuchKey", "NotFound"):
            return
        logger.warning("could not check whether the key exists; the conditional write will",
                       extra={"error": s3_failure(exc, "check the key").message})
        return
    raise _conflict(job)


@contextmanager
def _refusing_conflicts(job: Job) -> Iterator[None]:
    """S3's 412 PreconditionFailed (or 409 ConditionalRequestConflict: another writer is completing
    the same key) to a conditional write means the key was taken meanwhile: a conflict, not a failure."""
    try:
        yield
    except SinkError as exc:
        if not job.overwrite and exc.s3_code in ("PreconditionFailed", "ConditionalRequestConflict"):
            raise _conflict(job) from None
        raise


def run(job: Job, settings: Settings, s3: Any, http: HttpSource, glue: Any = None,
        deadline: Deadline | None = None,
        progress_report: Callable[[Snapshot], None] | None = None) -> Result:
    """Stream the job's data file into its target; on any failure nothing is left at the key.

    ``glue`` is a Glue client, used only when ``settings.glue_database`` is set. ``deadline`` stops
    the run (cleanly: upload aborted, nothing landed) before the platform's time limit would.
    ``progress_report`` receives a snapshot every ``settings.progress_interval_s`` (default: a log
    line; the CLI draws a progress bar).
    """
    started = time.monotonic()
    refuse_existing(s3, job)
    layout = fetch_layout(job, http, deadline, settings)
    schema = build_schema(layout, job.column_types)
    if schema.unknown_types:
        logger.warning("unknown dataType names read as string", extra={"columns": schema.unknown_types})
    fmt = format_for_key(job.key)
    ctx = WriteContext(layout, schema, WriteOptions(
        csv_header=job.csv_header, gzip_level=settings.gzip_level, compression=job.compression,
        on_bad_value=job.on_bad_value, row_group_bytes=settings.row_group_bytes))
    logger.info("streaming data", extra={"data_url": redact_url(job.data_url), "bucket": job.bucket,
                                         "key": job.key, "format": fmt.name,
                                         "columns": len(layout.columns)})
    with open_data(http, job.data_url, "data", settings.download_connections,
                   settings.download_range_bytes, deadline=deadline) as source:
        source.on_read = Progress(source.content_length, progress_report or _log_progress, deadline=deadline,
                                  interval_s=settings.progress_interval_s)
        sink = S3MultipartSink(s3, job.bucket, job.key, part_size=settings.part_size,
                               max_in_flight=settings.upload_concurrency,
                               extra_args={"ContentType": fmt.content_type, **encryption(settings)},
                               if_none_match=not job.overwrite,
                               plan=part_plan(settings.part_size, fmt, ctx, source))
        with _refusing_conflicts(job), sink:  # the sink aborts (nothing pending) before the conversion
            report = fmt.write(source, sink, ctx)
    url, url_error = result_url(s3, job, settings)
    result = Result(bucket=job.bucket, key=job.key, format=fmt.name, rows=report.rows,
                    columns=len(layout.columns), bytes_read=source.bytes_read,
                    bytes_written=sink.bytes_written, crc32=sink.checksum_crc32,
                    verified=bool(sink.verified),
                    seconds=time.monotonic() - started,
                    occurrence_id=job.occurrence_id, url=url, url_error=url_error,
                    schema=schema if fmt.typed else None, bad_values=report.bad_values,
                    catalog=warn_line_breaks(register(glue, job, settings, schema, fmt.name),
                                              report.records_with_line_breaks),
                    records_with_line_breaks=report.records_with_line_breaks)
    if not result.verified:
        logger.warning(UNVERIFIED, extra={"bucket": job.bucket, "key": job.key})
    logger.info("landed", extra={k: v for k, v in result.to_json().items() if k != "url"})
    return result


def part_plan(minimum: int, fmt: Format, ctx: WriteContext, source: Any) -> PartPlan:
    """Parts sized for the source's length where it is known (the ranged download knows it before the
    first part) and re-estimated from the rate so far; an object that cannot fit in S3 is refused here,
    before anything is uploaded."""
    length = source.content_length
    if length is None or getattr(source, "encoded", False):  # gzip on the wire: the length is not the size
        return PartPlan(minimum)
    if fmt.keeps_bytes:
        header = len(ctx.layout.header_line()) if ctx.options.csv_header else 0
        refuse_too_large(length + header)
    return PartPlan(minimum, expected_size=length,
                    progress=lambda: source.bytes_read / length if length else None)


def register(glue: Any, job: Job, settings: Settings, schema: TypedSchema,
              fmt: str) -> dict[str, Any] | None:
    """Catalog what landed.

    The object is complete by now, so a catalog failure is reported in the result (and logged as an
    error) rather than failing a transfer that did land and would only be sent again.
    """
    if not settings.glue_database or glue is None:
        return None
    try:
        outcome = register_table(glue, settings.glue_database, bucket=job.bucket, key=job.key,
                                 schema=schema, fmt=fmt, csv_header=job.csv_header)
    except ConnectorError as exc:
        logger.error("Glue registration failed", extra={"error_code": exc.code, "error_message": exc.message})
        return {"registered": False, "error": {"code": exc.code, "message": exc.message,
                                               "details": exc.details}}
    except Exception:  # the object landed: an unexpected catalog failure is reported, never raised
        logger.exception("Glue registration failed unexpectedly")
        return {"registered": False, "error": {"code": "INTERNAL_ERROR",
                                               "message": "an unexpected error occurred; see the logs"}}
    if outcome.get("warning"):
        logger.warning("Glue registration", extra={"warning": outcome["warning"]})
    return outcome


def warn_line_breaks(catalog: dict[str, Any] | None, count: int | None) -> dict[str, Any] | None:
    """A registered CSV table with quoted line breaks returns shifted rows: say so where it is seen."""
    if not count or not catalog or not catalog.get("table"):
        return catalog
    warning = (f"{count} records hold a line break inside a quoted field: Athena's CSV table splits "
               "each of them at the break into rows with missing or shifted values; land .parquet "
               "to query this audience faithfully")
    logger.warning("CSV records with line breaks in a registered table",
                   extra={"records_with_line_breaks": count, "table": catalog.get("table")})
    earlier = catalog.get("warning")
    return {**catalog, "warning": f"{earlier}; {warning}" if earlier else warning}


def result_url(s3: Any, job: Job, settings: Settings) -> tuple[str | None, dict[str, str] | None]:
    """The link, or why it is missing. Off by default: a day-long link to customer data sitting in
    CI360's logs is a leak. The object has landed by now, so a link that cannot be signed (no
    credentials, a credential provider failing) is logged and reported, never a failure; only the
    SDK's error code is kept, never its message (which may quote a credential provider's answer)."""
    if settings.result_url_ttl <= 0:
        return None, None
    try:
        return s3.generate_presigned_url("get_object", Params={"Bucket": job.bucket, "Key": job.key},
                                         ExpiresIn=settings.result_url_ttl), None
    except Exception as exc:
        code = aws_failure(exc).code
        reason = {"code": code, "message": f"the link to the result could not be signed ({code}); "
                                           "the object did land"}
        logger.error("could not sign a link to the result", extra={"error_code": code,
                                                                    "error_message": reason["message"]})
        return None, reason
