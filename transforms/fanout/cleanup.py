"""Removing what a fan-out leaves in S3: its staging folder's objects and any pending multipart upload
(a range function killed mid-upload cannot abort its own). Idempotent: what is gone stays gone."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from aws_lambda_powertools import Logger

from transforms import SERVICE_NAME
from transforms.aws import SDK_ERRORS
from transforms.sinks.s3 import s3_failure

logger = Logger(service=SERVICE_NAME, child=True)

DELETE_BATCH = 1000  # DeleteObjects' most


def remove_prefix(s3: Any, bucket: str, prefix: str) -> int:
    """Delete every object under ``prefix``; how many there were."""
    removed = 0
    try:
        for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
            keys = [item["Key"] for item in page.get("Contents", [])]
            removed += remove_keys(s3, bucket, keys)
    except SDK_ERRORS as exc:
        raise s3_failure(exc, "clear the fan-out's staging folder") from None
    return removed


def remove_keys(s3: Any, bucket: str, keys: Iterable[str]) -> int:
    keys = list(keys)
    for first in range(0, len(keys), DELETE_BATCH):
        batch = keys[first:first + DELETE_BATCH]
        try:
            answer = s3.delete_objects(Bucket=bucket, Delete={"Objects": [{"Key": key} for key in batch],
                                                               "Quiet": True})
        except SDK_ERRORS as exc:
            raise s3_failure(exc, "delete the fan-out's objects") from None
        if answer.get("Errors"):
            codes = sorted({error.get("Code", "?") for error in answer["Errors"]})
            raise s3_failure_from_codes(codes)
    return len(keys)


def s3_failure_from_codes(codes: list[str]) -> Exception:
    from transforms.errors import SinkError

    return SinkError(f"S3 refused to delete some of the fan-out's objects: {', '.join(codes)}", codes[0])


def abort_uploads(s3: Any, bucket: str, prefix: str, keys: set[str] | None = None,
                  since: float | None = None) -> int:
    """Abort pending multipart uploads under ``prefix`` (only at ``keys``, and only those started at or
    after ``since`` (epoch seconds), when given); how many."""
    aborted = 0
    try:
        for page in s3.get_paginator("list_multipart_uploads").paginate(Bucket=bucket, Prefix=prefix):
            for upload in page.get("Uploads", []):
                if keys is not None and upload["Key"] not in keys:
                    continue
                if since is not None and upload["Initiated"].timestamp() < since:
                    continue
                s3.abort_multipart_upload(Bucket=bucket, Key=upload["Key"], UploadId=upload["UploadId"])
                aborted += 1
    except SDK_ERRORS as exc:
        raise s3_failure(exc, "abort the fan-out's pending uploads") from None
    return aborted


def clear_staging(s3: Any, bucket: str, staging: str) -> dict[str, int]:
    """Pending uploads first (a range function killed mid-upload), then every staged object."""
    aborted = abort_uploads(s3, bucket, staging)
    removed = remove_prefix(s3, bucket, staging)
    if aborted:
        logger.warning("aborted pending range uploads", extra={"aborted": aborted, "staging": staging})
    return {"removed": removed, "aborted": aborted}
