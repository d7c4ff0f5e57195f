"""What the sink's requests carry, as botocore builds them for AWS (HTTPS), captured before sending
(``captured``, conftest.py: the requests never leave the process)."""

from __future__ import annotations

import base64
import zlib
from typing import Any
from urllib.parse import parse_qs, urlsplit

from transforms.sinks.s3 import S3MultipartSink

MIB = 1 << 20


def _crc(data: bytes) -> str:
    return base64.b64encode(zlib.crc32(data).to_bytes(4, "big")).decode()


def test_parts_carry_our_crc32_and_no_payload_hash(captured: tuple[Any, list[Any]]) -> None:
    """Each part is sent with the CRC32 the sink computed (the SDK computes none) and is not hashed with
    SHA-256 for the signature: ``UNSIGNED-PAYLOAD``, over HTTPS as AWS is reached."""
    s3, requests = captured
    data = bytes(range(256)) * (11 * MIB // 256)
    sink = S3MultipartSink(s3, "b", "k", part_size=5 * MIB, max_in_flight=2)
    sink.write(data)
    sink.close()
    parts = sorted((r for r in requests if r.method == "PUT"),
                   key=lambda r: int(parse_qs(urlsplit(r.url).query)["partNumber"][0]))
    assert [len(r.body) for r in parts] == [5 * MIB, 5 * MIB, MIB]
    for request, start in zip(parts, (0, 5 * MIB, 10 * MIB), strict=True):
        assert bytes(request.body) == data[start:start + len(request.body)]
        assert request.headers["x-amz-content-sha256"] == b"UNSIGNED-PAYLOAD"
        assert request.headers["x-amz-checksum-crc32"] == _crc(bytes(request.body)).encode()
        assert "aws-chunked" not in str(request.headers.get("Content-Encoding", ""))
    complete = requests[-1]
    assert complete.headers["x-amz-checksum-crc32"] == _crc(data).encode()
    assert sink.checksum_crc32 == _crc(data)


def test_single_put_carries_our_crc32_and_no_payload_hash(captured: tuple[Any, list[Any]]) -> None:
    s3, requests = captured
    with S3MultipartSink(s3, "b", "k", part_size=5 * MIB, max_in_flight=2) as sink:
        sink.write(b"abc,def\n")
    (put,) = requests
    assert put.headers["x-amz-content-sha256"] == b"UNSIGNED-PAYLOAD"
    assert put.headers["x-amz-checksum-crc32"] == _crc(b"abc,def\n").encode()
