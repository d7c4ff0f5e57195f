"""One object composed inside S3 from range objects: a multipart upload whose parts are copies.

The work is spread over the fan-out's steps (``assembly.py``): PrepareAssembly plans the parts and starts
the upload, the CopyParts Map's workers run ``copy_part`` for their batch, Finalize runs ``complete``.

Each range object becomes one or more ``UploadPartCopy`` parts (a copy part is at most 5 GiB, so a
larger one is copied as several ranges), conditional on the range object's ETag (``CopySourceIfMatch``:
only the exact object whose manifest was read is copied). S3 requires every part but the last to be at
least 5 MiB; a range object under that (a well-compressed ``.csv.gz`` range, a short JSON Lines range) is
carried: its bytes, and if need be the first bytes of the next range object, are read (at most 5 MiB,
in memory, never on disk) and uploaded as one ordinary part, and the rest of the next object is copied.
Exact, whatever the sizes, and the data never leaves S3 otherwise.

The object's FULL_OBJECT CRC32 is combined from the range objects' own CRC32s (each verified by S3 when
its range landed), sent with ``CompleteMultipartUpload``, and compared with what S3 reports, as the
one-function sink does: a different value removes the object; none leaves the result "unverified".
"""

from __future__ import annotations

import base64
import math
from dataclasses import dataclass
from typing import Any

from botocore.exceptions import ParamValidationError

from transforms.aws import SDK_ERRORS
from transforms.errors import IntegrityError, SinkError
from transforms.fast_zlib import crc32
from transforms.sinks.crc32 import crc32_combine
from transforms.sinks.s3 import s3_failure, sdk_refusal

MIB = 1024 * 1024
MIN_PART = 5 * MIB  # S3: every part but the last
MAX_COPY_PART = 5 * 1024 * MIB  # S3: a copy part's most
MAX_PARTS = 10_000
# Parts copied at once by one CopyParts worker. A copy runs inside S3 (the function only waits on its
# answer), so many can run at once without the function's network or CPU: a batch's time is its bytes /
# (this x the copy speed inside S3), and the assembly's, the bytes / (batches at once x this x that speed).
COPIERS = 32


@dataclass(frozen=True)
class Piece:
    """A range object as its manifest describes it."""

    key: str
    size: int
    crc32: str  # base64, as S3 spells it
    etag: str


@dataclass(frozen=True)
class Assembled:
    key: str
    size: int
    crc32: str
    verified: bool
    parts: int
    carried: int  # bytes read back because a range object was under 5 MiB


def _int_crc(value: str) -> int:
    return int.from_bytes(base64.b64decode(value), "big")


def _b64_crc(value: int) -> str:
    return base64.b64encode(value.to_bytes(4, "big")).decode("ascii")


def combined_crc32(pieces: list[Piece]) -> str:
    whole = 0
    for piece in pieces:
        whole = crc32_combine(whole, _int_crc(piece.crc32), piece.size)
    return _b64_crc(whole)


def plan_parts(pieces: list[Piece]) -> list[list[tuple[str, Piece, int, int]]]:
    """The parts, in order: each a list of ("copy" | "read", piece, first byte, last byte + 1); a
    "copy" part is one slice of one piece, a "read" part gathers slices until it reaches 5 MiB."""
    parts: list[list[tuple[str, Piece, int, int]]] = []
    carry: list[tuple[str, Piece, int, int]] = []
    carried = 0
    pieces = [piece for piece in pieces if piece.size]
    for number, piece in enumerate(pieces):
        last = number == len(pieces) - 1
        offset = 0
        if carry:
            take = min(MIN_PART - carried, piece.size)
            carry.append(("read", piece, 0, take))
            carried += take
            offset = take
            if carried >= MIN_PART:
                parts.append(carry)
                carry, carried = [], 0
        rest = piece.size - offset
        if not rest:
            continue
        if rest >= MIN_PART or last:
            count = max(1, math.ceil(rest / MAX_COPY_PART))
            step = math.ceil(rest / count)
            for first in range(offset, piece.size, step):
                parts.append([("copy", piece, first, min(piece.size, first + step))])
        else:
            carry, carried = [("read", piece, offset, piece.size)], rest
    if carry:
        parts.append(carry)
    return parts


def put_empty(s3: Any, bucket: str, key: str, *, extra_args: dict[str, Any],
              if_none_match: bool) -> Assembled:
    """Nothing landed (an empty audience in JSON Lines): an empty object, as one function writes."""
    condition = {"IfNoneMatch": "*"} if if_none_match else {}
    whole = _b64_crc(0)
    stored = _call("write the object", s3.put_object, Bucket=bucket, Key=key, Body=b"", ChecksumCRC32=whole,
                   **extra_args, **condition)
    return Assembled(key, 0, whole, verify(s3, bucket, key, stored, whole, 0), 0, 0)


def copy_part(s3: Any, bucket: str, key: str, upload: str, number: int,
              slices: list[tuple[str, Piece, int, int]]) -> int:
    """Part ``number`` of the upload: a copy of one slice, or the gathered slices read and uploaded.
    Run again, it replaces the part (S3 keeps the last upload of a part number): never a duplicate.
    Returns the part's size."""
    if slices[0][0] == "copy":
        _, piece, first, end = slices[0]
        _call(f"copy part {number}", s3.upload_part_copy, Bucket=bucket, Key=key, UploadId=upload,
              PartNumber=number, CopySource={"Bucket": bucket, "Key": piece.key},
              CopySourceRange=f"bytes={first}-{end - 1}", CopySourceIfMatch=piece.etag)
        return end - first
    body = bytearray()
    for _, piece, first, end in slices:
        got = _call("read back a small range object", s3.get_object, Bucket=bucket, Key=piece.key,
                    Range=f"bytes={first}-{end - 1}", IfMatch=piece.etag)["Body"].read()
        if len(got) != end - first:
            raise SinkError(f"read {len(got)} bytes of {piece.key}, not {end - first}", "ShortRead")
        body += got
    _call(f"upload part {number}", s3.upload_part, Bucket=bucket, Key=key, UploadId=upload, PartNumber=number,
          Body=bytes(body), ChecksumCRC32=_b64_crc(crc32(bytes(body))))
    return len(body)


def complete(s3: Any, bucket: str, key: str, upload: str, sizes: list[int], whole: str, owner: dict[str, str],
             *, if_none_match: bool) -> Assembled:
    """Complete the upload from its parts as S3 lists them (ListParts): every planned part number present
    with its planned size, nothing else, or nothing is completed. The whole object's CRC32 is sent and
    what S3 reports is verified.

    Run again after S3 completed the upload (the answer was lost; Step Functions retried the step), the
    upload is gone (``NoSuchUpload``) or, with ``overwrite`` false, the key is taken by our own object
    (``PreconditionFailed``): the object at the key is recognised as this fan-out's by its owner metadata
    (``owner``, written at CreateMultipartUpload) and its CRC32, and taken as completed."""
    size = sum(sizes)
    try:
        listed = _list_parts(s3, bucket, key, upload)
    except SinkError as exc:
        if exc.s3_code == "NoSuchUpload":
            return _ours(s3, bucket, key, whole, size, owner, exc)
        raise
    wanted = {number: part_size for number, part_size in enumerate(sizes, start=1)}
    found = {part["PartNumber"]: int(part["Size"]) for part in listed}
    if found != wanted:
        missing = sorted(set(wanted) - set(found))
        wrong = sorted(n for n in set(wanted) & set(found) if found[n] != wanted[n])
        extra = sorted(set(found) - set(wanted))
        raise SinkError(f"s3://{bucket}/{key}: the upload's parts are not the planned ones (missing "
                        f"{missing[:5]}, wrong size {wrong[:5]}, unplanned {extra[:5]}); not completed",
                        "PartsIncomplete")
    parts = []
    for part in sorted(listed, key=lambda item: item["PartNumber"]):
        entry = {"PartNumber": part["PartNumber"], "ETag": part["ETag"]}
        if part.get("ChecksumCRC32"):
            entry["ChecksumCRC32"] = part["ChecksumCRC32"]
        parts.append(entry)
    condition = {"IfNoneMatch": "*"} if if_none_match else {}
    try:
        stored = _call("complete the upload", s3.complete_multipart_upload, Bucket=bucket, Key=key,
                       UploadId=upload, MultipartUpload={"Parts": parts}, ChecksumCRC32=whole,
                       ChecksumType="FULL_OBJECT", **condition)
    except SinkError as exc:
        if exc.s3_code in ("NoSuchUpload", "PreconditionFailed", "ConditionalRequestConflict"):
            return _ours(s3, bucket, key, whole, size, owner, exc)
        raise
    return Assembled(key, size, whole, verify(s3, bucket, key, stored, whole, size), len(sizes), 0)


def _list_parts(s3: Any, bucket: str, key: str, upload: str) -> list[dict[str, Any]]:
    try:
        pages = s3.get_paginator("list_parts").paginate(Bucket=bucket, Key=key, UploadId=upload)
        return [part for page in pages for part in page.get("Parts", [])]
    except SDK_ERRORS as exc:
        raise s3_failure(exc, "list the upload's parts") from None


def _ours(s3: Any, bucket: str, key: str, whole: str, size: int, owner: dict[str, str],
          refusal: SinkError) -> Assembled:
    """The object at the key, when an earlier run of this step completed it; else ``refusal`` is raised."""
    try:
        head = s3.head_object(Bucket=bucket, Key=key, ChecksumMode="ENABLED")
    except SDK_ERRORS:
        raise refusal from None
    metadata = head.get("Metadata") or {}
    mine = all(metadata.get(name) == value for name, value in owner.items())
    reported = head.get("ChecksumCRC32")
    if not mine or int(head.get("ContentLength", -1)) != size or (reported and reported != whole):
        raise refusal
    verified = reported == whole and head.get("ChecksumType") in (None, "FULL_OBJECT")
    return Assembled(key, size, whole, verified, 0, 0)


def verify(s3: Any, bucket: str, key: str, stored: dict[str, Any], whole: str, size: int) -> bool:
    """As ``S3MultipartSink`` verifies: S3's reported FULL_OBJECT CRC32 must be ours, else the object goes."""
    value, kind = stored.get("ChecksumCRC32"), stored.get("ChecksumType")
    if not value:
        return False
    if value == whole and kind in (None, "FULL_OBJECT"):
        return True
    version = stored.get("VersionId")
    which = {"VersionId": version} if version and version != "null" else {}
    try:
        s3.delete_object(Bucket=bucket, Key=key, **which)
        removed = True
    except SDK_ERRORS:
        removed = False
    raise IntegrityError(
        f"S3 stored s3://{bucket}/{key} with checksum {value} ({kind or 'type not given'}), not the CRC32 "
        f"{whole} (FULL_OBJECT) of the {size} bytes of its ranges; "
        + ("the object was deleted" if removed else "it could not be deleted: remove it by hand"))


def _call(action: str, method: Any, **kwargs: Any) -> Any:
    try:
        return method(**kwargs)
    except ParamValidationError as exc:
        raise sdk_refusal(exc, action) from None
    except SDK_ERRORS as exc:
        raise s3_failure(exc, action) from None
