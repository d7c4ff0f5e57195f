"""A write-only stream into one S3 object, uploading parts concurrently while the caller keeps writing.

smart_open's MultipartWriter uploads each part in the calling thread, so reading the source and
uploading take turns. Here full parts go to a small thread pool instead; the caller blocks only when
``max_in_flight`` parts are already uploading, so memory stays at most
``part_size * (max_in_flight + 1)`` whatever the object's size: that many part buffers at most, reused
while the uploads stay busy (``SPARE_BUFFERS``), each byte copied once into one of them (no buffer grown,
sliced and freed per part).

The object appears at the key only on ``close()``. ``abort()`` (or any failure) leaves neither an
object nor a pending multipart upload. Small objects skip multipart and use one PutObject.

Every object carries a full-object CRC32 of the bytes written. Each part's CRC32 is computed once, by
the thread that uploads it, and sent with the part (so the SDK computes none); the object's CRC32 is
combined from the parts' (``crc32.crc32_combine``). S3 checks it on arrival and returns the checksum
it stored; ``close()`` compares that with ours. A different value (or a checksum of
another type) is an integrity failure, and the object is deleted before it is reported. A store that
returns no checksum leaves ``verified`` False: the result then says the checksum is only ours.
"""

from __future__ import annotations

import base64
import logging
import re
import threading
from collections import deque
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

import botocore
from botocore.exceptions import ParamValidationError

from transforms.aws import SDK_ERRORS, aws_failure
from transforms.errors import ConfigurationError, IntegrityError, SinkError
from transforms.fast_zlib import crc32
from transforms.sinks.crc32 import crc32_combine
from transforms.sinks.parts import MAX_PARTS, PartPlan, outgrown

logger = logging.getLogger(__name__)
# A part buffer whose upload ended is kept for the next part while fewer spares are kept than parts are
# still uploading (and at least this many); the others are freed, straight back to the system (mapped on
# their own: transforms.memory). A steady stream, its uploads all busy (.csv), keeps reusing every buffer;
# a typed format, which hands a row group's ~15 MB over at once and then nothing for a while, no longer
# keeps its largest burst's buffers for the rest of the file (4-5 of 8 MiB at the peaks of a 1 GiB
# `.parquet` run, 2-4 at 256 MiB: bench/ranged.py, capped both ways, 2 cores, issue 21).
SPARE_BUFFERS = 1


def s3_failure(exc: Exception, action: str) -> SinkError:
    """Name S3's own error code (AccessDenied, NoSuchBucket, ...) without leaking request details."""
    failure = aws_failure(exc)
    if failure.http_status is not None:  # S3 answered and refused
        return SinkError(f"S3 refused to {action}: {failure.code}", failure.code, failure.http_status)
    return SinkError(f"S3 could not be reached to {action} ({failure.code})", failure.code)


def sdk_refusal(exc: ParamValidationError, action: str) -> ConfigurationError:
    """The SDK refused a request before sending it: the deployment's botocore is too old for a parameter
    (ChecksumType needs 1.36, IfNoneMatch on CompleteMultipartUpload 1.35.99). Names only the parameters,
    never their values."""
    names = sorted(set(re.findall(r'parameter in [\w.]+: "(\w+)"', str(exc))))
    which = f" ({', '.join(names)})" if names else ""
    return ConfigurationError(
        f"the deployed AWS SDK (botocore {botocore.__version__}) refused a parameter{which} to {action}; "
        "deploy the function with the botocore pinned in requirements.txt")


class S3MultipartSink:
    """File-like ``write``/``close`` into ``s3://bucket/key``; see the module docstring for guarantees."""

    def __init__(self, client: Any, bucket: str, key: str, *, part_size: int, max_in_flight: int,
                 extra_args: dict[str, Any] | None = None, if_none_match: bool = False,
                 plan: PartPlan | None = None) -> None:
        """``part_size`` is the smallest part; ``plan`` (default: that size, growing only by its
        schedule) sizes each next part so that the object fits in S3's 10,000 (see parts.py)."""
        self._client = client
        # Conditional write: the object is created only if the key is free (S3 answers 412
        # PreconditionFailed otherwise, and the upload is aborted like any other failure).
        self._condition = {"IfNoneMatch": "*"} if if_none_match else {}
        self._bucket = bucket
        self._key = key
        self._plan = plan or PartPlan(part_size)
        self._part_size = self._plan.first()
        self._extra = dict(extra_args or {})
        self._part: bytearray | None = None  # the part being filled, ``_filled`` bytes so far
        self._filled = 0
        self._spare: deque[bytearray] = deque()  # part buffers whose upload is done, for reuse
        self._upload_id: str | None = None
        self._parts: list[Future[tuple[dict[str, Any], int, int]]] = []
        self._slots = threading.BoundedSemaphore(max_in_flight)
        self._count = threading.Lock()
        self._uploading = 0  # parts submitted whose upload has not ended
        self._pool: ThreadPoolExecutor | None = None
        self._max_in_flight = max_in_flight
        self._state = "open"
        self._crc32: int | None = None  # the object's, known once every part is uploaded (or at the put)
        self.bytes_written = 0
        # True once S3 returned our CRC32 as the object's FULL_OBJECT checksum; False when it returned none.
        self.verified: bool | None = None

    # -- file-like surface -------------------------------------------------------------------------
    def writable(self) -> bool:
        return True

    @property
    def closed(self) -> bool:
        return self._state != "open"

    def write(self, data: bytes | bytearray | memoryview) -> int:
        if self._state == "aborted":
            # A compressor that is garbage-collected after a failure flushes its trailer here:
            # nobody will complete this object, so the bytes are dropped.
            return len(data)
        if self._state != "open":
            raise ValueError("write to a closed S3 sink")
        try:
            with memoryview(data) as view, view.cast("B") as raw:
                done = 0
                while done < len(raw):
                    if self._part is None:
                        self._part = self._buffer()
                    take = min(self._part_size - self._filled, len(raw) - done)
                    self._part[self._filled:self._filled + take] = raw[done:done + take]
                    self._filled += take
                    done += take
                    if self._filled == self._part_size:
                        part, self._part, self._filled = self._part, None, 0
                        self._submit(part, self._part_size)
                        self._part_size = self._plan.next(len(self._parts), self.bytes_written + done,
                                                          self._part_size)
                self.bytes_written += done
                return done
        except BaseException:
            self.abort()  # a failed part dooms the object: clean up now, whoever holds the sink
            raise

    @property
    def checksum_crc32(self) -> str:
        """CRC32 of every byte written, base64 as S3 spells it; S3 verifies it on completion."""
        if self._crc32 is None:
            raise ValueError("the object's CRC32 is known once the sink is closed")
        return _b64_crc32(self._crc32)

    def flush(self) -> None:
        """Parts are uploaded as they fill; flushing early would make parts under S3's 5 MiB minimum."""

    def close(self) -> None:
        """Finish the object: it exists at the key only once this returns."""
        if self._state != "open":
            return
        try:
            if self._upload_id is None:
                body = bytes(memoryview(self._part)[:self._filled]) if self._part is not None else b""
                self._crc32 = crc32(body)
                stored = self._put_whole(body)
            else:
                if self._filled:
                    self._submit(self._part, self._filled)  # type: ignore[arg-type]
                    self._part, self._filled = None, 0
                parts, whole = [], 0
                for future in self._parts:
                    part, part_crc32, length = future.result()
                    parts.append(part)
                    whole = crc32_combine(whole, part_crc32, length)
                self._crc32 = whole
                stored = self._call("complete the upload", self._client.complete_multipart_upload,
                                    Bucket=self._bucket, Key=self._key, UploadId=self._upload_id,
                                    MultipartUpload={"Parts": parts}, ChecksumCRC32=self.checksum_crc32,
                                    ChecksumType="FULL_OBJECT", **self._condition)
                self._upload_id = None  # completed: nothing left to abort
        except BaseException:
            self.abort()
            raise
        finally:
            self._release_buffers()
            self._shutdown()
        self._state = "closed"
        self._verify(stored)

    def _verify(self, stored: dict[str, Any]) -> None:
        """Compare the checksum S3 says it stored with ours; remove the object when they differ."""
        value, kind = stored.get("ChecksumCRC32"), stored.get("ChecksumType")
        if not value:
            self.verified = False
            return
        # A single PUT's checksum is of the whole object; S3 may or may not say so (ChecksumType).
        if value == self.checksum_crc32 and kind in (None, "FULL_OBJECT"):
            self.verified = True
            return
        removed = self._remove(stored.get("VersionId"))
        raise IntegrityError(
            f"S3 stored s3://{self._bucket}/{self._key} with checksum {value} ({kind or 'type not given'}), "
            f"not the CRC32 {self.checksum_crc32} (FULL_OBJECT) of the {self.bytes_written} bytes sent; "
            + ("the object was deleted" if removed else "it could not be deleted: remove it by hand"))

    def _remove(self, version_id: str | None) -> bool:
        """Delete what this sink wrote: its own version on a versioned bucket (the previous version, if
        any, becomes current again), else the object."""
        version = {"VersionId": version_id} if version_id and version_id != "null" else {}
        try:
            self._client.delete_object(Bucket=self._bucket, Key=self._key, **version)
        except SDK_ERRORS as exc:
            logger.error("could not delete an object that failed its integrity check",
                         extra={"bucket": self._bucket, "key": self._key,
                                "error": s3_failure(exc, "delete the object").message})
            return False
        return True

    def abort(self) -> None:
        """Drop everything: no object at the key and no pending multipart upload."""
        if self._state != "open":
            return
        self._state = "aborted"
        self._release_buffers()
        for future in self._parts:
            future.cancel()
        self._shutdown()
        if self._upload_id is not None:
            try:
                self._client.abort_multipart_upload(Bucket=self._bucket, Key=self._key,
                                                    UploadId=self._upload_id)
            except SDK_ERRORS as exc:
                # Nothing more can be done here; the bucket's lifecycle rule for incomplete
                # multipart uploads is the backstop. Say so, because it costs storage until then.
                logger.error("could not abort the multipart upload",
                             extra={"bucket": self._bucket, "key": self._key,
                                    "error": s3_failure(exc, "abort the upload").message})

    def __enter__(self) -> S3MultipartSink:
        return self

    def __exit__(self, exc_type: Any, *_: Any) -> None:
        if exc_type is None:
            self.close()
        else:
            self.abort()

    # -- internals ---------------------------------------------------------------------------------
    def _call(self, action: str, method: Any, **kwargs: Any) -> Any:
        try:
            return method(**kwargs)
        except ParamValidationError as exc:  # raised before anything is sent: not a network failure
            raise sdk_refusal(exc, action) from None
        except SDK_ERRORS as exc:
            raise s3_failure(exc, action) from None

    def _buffer(self) -> bytearray:
        """A spare part buffer of the current part size (one of an outgrown size is dropped), or a
        new one."""
        while self._spare:
            spare = self._spare.popleft()
            if len(spare) == self._part_size:
                return spare
        return bytearray(self._part_size)

    def _release_buffers(self) -> None:
        self._part, self._filled = None, 0
        self._spare.clear()

    def _put_whole(self, body: bytes) -> dict[str, Any]:
        return self._call("write the object", self._client.put_object, Bucket=self._bucket, Key=self._key,
                   Body=body, ChecksumCRC32=self.checksum_crc32, **self._extra, **self._condition)

    def _submit(self, buffer: bytearray, length: int) -> None:
        """Upload ``buffer[:length]`` as the next part; the buffer comes back for reuse once it is sent."""
        if self._upload_id is None:
            # A full-object CRC32 (not a checksum of checksums) so that the value in the result is
            # the CRC32 of the object's bytes, checkable by anyone who reads it back.
            created = self._call("start a multipart upload", self._client.create_multipart_upload,
                                 Bucket=self._bucket, Key=self._key, ChecksumAlgorithm="CRC32",
                                 ChecksumType="FULL_OBJECT", **self._extra)
            self._upload_id = created["UploadId"]
            self._pool = ThreadPoolExecutor(self._max_in_flight, thread_name_prefix="s3-part")
        self._raise_failed_parts()
        if len(self._parts) >= MAX_PARTS:
            raise outgrown(self.bytes_written)
        self._slots.acquire()  # back-pressure: the reader waits while enough parts are in flight
        number = len(self._parts) + 1
        assert self._pool is not None
        with self._count:
            self._uploading += 1
        try:
            future = self._pool.submit(self._upload_part, number, buffer, length)
        except BaseException:
            with self._count:
                self._uploading -= 1
            self._slots.release()
            raise
        self._parts.append(future)

    def _upload_part(self, number: int, buffer: bytearray, length: int) -> tuple[dict[str, Any], int, int]:
        """Upload one part with its own CRC32 (computed here, off the writer's thread); (the part as
        CompleteMultipartUpload lists it, its CRC32, its length)."""
        try:
            # The last part is shorter than its buffer: it alone is copied out (the SDK takes a
            # bytearray as a body, not a view). A bytearray is sent as it is, in one piece; bytes
            # would be wrapped in a file that http.client sends 8 KiB at a time.
            body = buffer if length == len(buffer) else buffer[:length]
            part_crc32 = crc32(body)
            response = self._call(f"upload part {number}", self._client.upload_part, Bucket=self._bucket,
                                  Key=self._key, UploadId=self._upload_id, PartNumber=number, Body=body,
                                  ChecksumCRC32=_b64_crc32(part_crc32))
            part = {"PartNumber": number, "ETag": response["ETag"]}
            if response.get("ChecksumCRC32"):
                part["ChecksumCRC32"] = response["ChecksumCRC32"]
            with self._count:  # kept while fewer are kept than the other parts still uploading
                keep = len(self._spare) < max(SPARE_BUFFERS, self._uploading - 1)
            if self._state == "open" and length == len(buffer) and keep:
                self._spare.append(buffer)
            return part, part_crc32, length
        finally:
            with self._count:
                self._uploading -= 1
            self._slots.release()

    def _raise_failed_parts(self) -> None:
        """Stop early on a failed part rather than streaming the rest of a large file for nothing."""
        for future in self._parts:
            if future.done() and not future.cancelled() and future.exception() is not None:
                raise future.exception()  # type: ignore[misc]

    def _shutdown(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)
            self._pool = None


def _b64_crc32(value: int) -> str:
    return base64.b64encode(value.to_bytes(4, "big")).decode("ascii")
