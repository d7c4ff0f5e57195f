"""The concurrent multipart sink against moto's server, plus failure injection around a real client."""

from __future__ import annotations

import base64
import zlib

import pytest

from tests.support.helpers import FlakyClient, Stack
from transforms.errors import SinkError
from transforms.sinks.s3 import S3MultipartSink

MIB = 1024 * 1024




def chunks(total: int, size: int = MIB) -> list[bytes]:
    return [bytes([i % 251]) * size for i in range(total // size)]


def test_parts_upload_concurrently_and_assemble_in_order(stack: Stack) -> None:
    client = FlakyClient(stack.s3, together=3)
    sink = S3MultipartSink(client, stack.target, "k.bin", part_size=5 * MIB, max_in_flight=3)
    data = chunks(26 * MIB)
    for chunk in data:
        sink.write(chunk)
    sink.close()
    assert stack.landed("k.bin") == b"".join(data)
    assert sink.bytes_written == 26 * MIB
    expected_crc = base64.b64encode(zlib.crc32(b"".join(data)).to_bytes(4, "big")).decode()
    assert sink.checksum_crc32 == expected_crc
    head = stack.s3.head_object(Bucket=stack.target, Key="k.bin", ChecksumMode="ENABLED")
    assert (head["ChecksumCRC32"], head["ChecksumType"]) == (expected_crc, "FULL_OBJECT")
    # Several parts were in flight at once (upload overlaps the writer), but never more than allowed.
    assert client.max_in_flight == 3


def test_small_object_is_one_put_and_empty_object_is_allowed(stack: Stack) -> None:
    with S3MultipartSink(stack.s3, stack.target, "small", part_size=5 * MIB, max_in_flight=2) as sink:
        sink.write(b"abc")
    with S3MultipartSink(stack.s3, stack.target, "empty", part_size=5 * MIB, max_in_flight=2):
        pass
    assert stack.landed("small") == b"abc"
    assert stack.landed("empty") == b""
    assert stack.pending_uploads() == []


def test_nothing_is_visible_before_close(stack: Stack) -> None:
    sink = S3MultipartSink(stack.s3, stack.target, "late", part_size=5 * MIB, max_in_flight=2)
    for chunk in chunks(12 * MIB):
        sink.write(chunk)
    assert stack.target_keys() == []
    sink.close()
    assert stack.target_keys() == ["late"]


def test_failed_part_aborts_the_upload_and_leaves_nothing(stack: Stack) -> None:
    client = FlakyClient(stack.s3, fail_part=2)
    sink = S3MultipartSink(client, stack.target, "broken", part_size=5 * MIB, max_in_flight=2)
    with pytest.raises(SinkError) as raised:
        for chunk in chunks(40 * MIB):
            sink.write(chunk)
        sink.close()
    assert raised.value.s3_code == "InternalError"
    assert "upload part 2" in raised.value.message
    assert stack.target_keys() == []
    assert stack.pending_uploads() == []


def test_abort_in_a_with_block_leaves_nothing(stack: Stack) -> None:
    with pytest.raises(RuntimeError), S3MultipartSink(stack.s3, stack.target, "x", part_size=5 * MIB,
                                                      max_in_flight=2) as sink:
        for chunk in chunks(11 * MIB):
            sink.write(chunk)
        raise RuntimeError("the source failed")
    assert stack.target_keys() == []
    assert stack.pending_uploads() == []
    sink.write(b"late trailer from a garbage-collected compressor")  # dropped, not raised


def test_missing_bucket_names_the_s3_code(stack: Stack) -> None:
    sink = S3MultipartSink(stack.s3, "no-such-bucket-here", "k", part_size=5 * MIB, max_in_flight=2)
    sink.write(b"abc")
    with pytest.raises(SinkError) as raised:
        sink.close()
    assert raised.value.s3_code == "NoSuchBucket"
