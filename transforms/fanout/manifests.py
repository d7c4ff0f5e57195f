"""Small JSON objects in the staging folder: the job (what a range needs to run) and each range's
manifest (what the finalizer needs to assemble and count). The state machine carries neither: its
history would show the presigned URLs, and its payloads are limited to 256 KiB."""

from __future__ import annotations

import json
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from transforms.aws import SDK_ERRORS, aws_failure
from transforms.fanout.naming import range_manifest
from transforms.sinks.s3 import s3_failure

READERS = 16  # manifests fetched at once by the finalizer


def put_json(s3: Any, bucket: str, key: str, value: Any, extra_args: dict[str, Any]) -> None:
    try:
        s3.put_object(Bucket=bucket, Key=key, Body=json.dumps(value).encode(), ContentType="application/json",
                      **extra_args)
    except SDK_ERRORS as exc:
        raise s3_failure(exc, "write the fan-out's staging record") from None


def get_json(s3: Any, bucket: str, key: str) -> Any | None:
    """The object's JSON, or None when there is no such object."""
    try:
        body = s3.get_object(Bucket=bucket, Key=key)["Body"].read()
    except SDK_ERRORS as exc:
        failure = aws_failure(exc)
        if failure.code in ("NoSuchKey", "404", "NotFound"):
            return None
        raise s3_failure(exc, "read the fan-out's staging record") from None
    return json.loads(body)


def read_manifests(s3: Any, bucket: str, staging: str, count: int) -> list[dict[str, Any] | None]:
    """Every range's manifest, in range order (None where a range has not landed)."""
    with ThreadPoolExecutor(min(READERS, max(1, count)), thread_name_prefix="manifest") as pool:
        return list(pool.map(lambda index: get_json(s3, bucket, range_manifest(staging, index)),
                             range(count)))
