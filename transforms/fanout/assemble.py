"""One object composed inside S3 from range objects: a multipart upload whose parts are copies.

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
from concurrent.futures import ThreadPoolExecutor
from contextlib import suppress
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
# Parts copied at once. A copy runs inside S3 (the function only waits on its answer), so many can run at
# once without the function's network or CPU: the finalizer's time is the object's bytes / (this x the copy
# speed inside S3).
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


def assemble(s3: Any, bucket: str, key: str, pieces: list[Piece], *, extra_args: dict[str, Any],
             if_none_match: bool) -> Assembled:
    """Compose ``pieces`` (in order) into ``s3://bucket/key``; nothing is left pending on failure."""
    condition = {"IfNoneMatch": "*"} if if_none_match else {}
    whole = combined_crc32(pieces)
    size = sum(piece.size for piece in pieces)
    parts = plan_parts(pieces)
    if len(parts) > MAX_PARTS:
        raise SinkError(f"s3://{bucket}/{key} would take {len(parts)} parts; S3 allows {MAX_PARTS}",
                        "TooManyParts")
    carried = sum(end - start for part in parts for kind, _, start, end in part if kind == "read")
    if not parts:  # nothing landed (an empty audience in JSON Lines): an empty object, as one function writes
        stored = _call("write the object", s3.put_object, Bucket=bucket, Key=key, Body=b"",
                       ChecksumCRC32=whole, **extra_args, **condition)
        return Assembled(key, 0, whole, _verify(s3, bucket, key, stored, whole, 0), 0, 0)
    upload = _call("start a multipart upload", s3.create_multipart_upload, Bucket=bucket, Key=key,
                   ChecksumAlgorithm="CRC32", ChecksumType="FULL_OBJECT", **extra_args)["UploadId"]
    try:
        with ThreadPoolExecutor(COPIERS, thread_name_prefix="copy-part") as pool:
            listed = list(pool.map(lambda numbered: _part(s3, bucket, key, upload, *numbered),
                                   enumerate(parts, start=1)))
        stored = _call("complete the upload", s3.complete_multipart_upload, Bucket=bucket, Key=key,
                       UploadId=upload, MultipartUpload={"Parts": listed}, ChecksumCRC32=whole,
                       ChecksumType="FULL_OBJECT", **condition)
    except BaseException:
        # On failure to abort, the bucket's lifecycle rule is the backstop (and abandon aborts what it finds).
        with suppress(*SDK_ERRORS):
            s3.abort_multipart_upload(Bucket=bucket, Key=key, UploadId=upload)
        raise
    return Assembled(key, size, whole, _verify(s3, bucket, key, stored, whole, size), len(parts), carried)


def _part(s3: Any, bucket: str, key: str, upload: str, number: int,
          slices: list[tuple[str, Piece, int, int]]) -> dict[str, Any]:
    if slices[0][0] == "copy":
        _, piece, first, end = slices[0]
        result = _call(f"copy part {number}", s3.upload_part_copy, Bucket=bucket, Key=key, UploadId=upload,
                       PartNumber=number, CopySource={"Bucket": bucket, "Key": piece.key},
                       CopySourceRange=f"bytes={first}-{end - 1}",
                       CopySourceIfMatch=piece.etag)["CopyPartResult"]
    else:
        body = bytearray()
        for _, piece, first, end in slices:
            got = _call("read back a small range object", s3.get_object, Bucket=bucket, Key=piece.key,
                        Range=f"bytes={first}-{end - 1}", IfMatch=piece.etag)["Body"].read()
            if len(got) != end - first:
                raise SinkError(f"read {len(got)} bytes of {piece.key}, not {end - first}", "ShortRead")
            body += got
        result = _call(f"upload part {number}", s3.upload_part, Bucket=bucket, Key=key, UploadId=upload,
                       PartNumber=number, Body=bytes(body), ChecksumCRC32=_b64_crc(crc32(bytes(body))))
    part = {"PartNumber": number, "ETag": result["ETag"]}
    if result.get("ChecksumCRC32"):
        part["ChecksumCRC32"] = result["ChecksumCRC32"]
    return part


def _verify(s3: Any, bucket: str, key: str, stored: dict[str, Any], whole: str, size: int) -> bool:
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
