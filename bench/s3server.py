"""The benchmark's local S3: moto's server, with two memory fixes that change no answer it gives.

``python -m bench.s3server -H 127.0.0.1 -p PORT`` is ``python -m moto.server`` with these applied:

1. A multipart upload created without a checksum algorithm gets, as on S3 since 2025, a full-object
   checksum by default. moto computes it by keeping a second copy of every part's bytes in one buffer,
   copying that buffer once more, and hashing it at the end: two extra copies of the whole object in
   memory and several seconds per GB on the request that completes the upload (S3 combines the parts'
   CRCs instead). Here the same checksum is computed incrementally, part by part, with the same function
   (CRC-32 when awscrt is absent, as moto falls back to; CRC64NVME with awscrt): the same value, no copies.
   Uploads created with an algorithm (boto3's ``upload_file`` asks for CRC32, composite) are untouched.
2. moto stores an object in a SpooledTemporaryFile that first writes the whole value into memory and
   only then rolls it over to disk. A value larger than the spool size is rolled over first, so it is
   written to the file directly.

Neither touches anything a contender measures in its own process; both keep the server's memory use
within what the 4x line (a 4 GiB object completed while another 4 GiB one is being served) can afford on
a 24 GiB machine.
"""

from __future__ import annotations

import base64
import binascii
import sys
from typing import Any

from moto.s3 import models, utils


class IncrementalChecksumBuilder(models.MultipartChecksumBuilder):
    """The default full-object checksum, fed part by part; everything else as moto does it."""

    def __init__(self, checksum_algorithm: str | None, checksum_type: str | None) -> None:
        super().__init__(checksum_algorithm, checksum_type)
        self._running: int | None = None
        self._width = 0
        self._update: Any = None
        if self.checksum_type == "FULL_OBJECT":
            if self.checksum_algorithm == "CRC32" or (
                    self.checksum_algorithm == "CRC64NVME" and not utils.HAS_CRT):
                self._update, self._width = binascii.crc32, 4
            elif self.checksum_algorithm == "CRC64NVME":
                from awscrt import checksums

                self._update, self._width = checksums.crc64nvme, 8

    def addPart(self, part: bytes) -> None:  # noqa: N802 (moto's name)
        if self._update is None:
            super().addPart(part)
            return
        self._running = self._update(part) if self._running is None else self._update(part, self._running)
        self.part_count += 1

    def build(self) -> tuple[str, str, int] | None:
        if self._update is None:
            return super().build()
        value = self._running if self._running is not None else self._update(b"")
        return self.checksum_type, base64.b64encode(value.to_bytes(self._width, "big")).decode(), 1


def _spool_then_set(original: property) -> property:
    def setter(key: Any, new_value: Any) -> None:
        if isinstance(new_value, bytes | bytearray) and len(new_value) > key._max_buffer_size:
            key._value_buffer.rollover()
        original.fset(key, new_value)  # type: ignore[misc]

    return property(original.fget, setter, original.fdel, original.__doc__)


def patch() -> None:
    models.MultipartChecksumBuilder = IncrementalChecksumBuilder  # type: ignore[misc]
    models.FakeKey.value = _spool_then_set(models.FakeKey.value)  # type: ignore[method-assign]


def main() -> None:
    patch()
    from moto.server import main as moto_main

    moto_main(sys.argv[1:])


if __name__ == "__main__":
    main()
