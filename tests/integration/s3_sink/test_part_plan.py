"""Parts that grow as the object does, and the 10,000-part limit, against moto's server; and a source
that declares more than S3 can hold, refused before anything is uploaded (through the webhook)."""

from __future__ import annotations

import base64
import zlib

import pytest

from devstack.localstack import webhook_payload
from tests.support.faultserver import Script
from tests.support.helpers import DATA, JSON_LAYOUT, Stack, api_gateway_event, invoke
from transforms.sinks import parts
from transforms.sinks import s3 as s3_sink
from transforms.sinks.parts import MAX_OBJECT_SIZE, ObjectTooLarge, PartPlan
from transforms.sinks.s3 import S3MultipartSink

MIB = 1024 * 1024


class PartRecorder:
    """A real S3 client that notes each part's size as it is sent."""

    def __init__(self, client) -> None:
        self._client = client
        self.sizes: dict[int, int] = {}

    def upload_part(self, **kwargs):
        self.sizes[kwargs["PartNumber"]] = len(kwargs["Body"])
        return self._client.upload_part(**kwargs)

    def __getattr__(self, name: str):
        return getattr(self._client, name)


def pattern(total: int) -> bytes:
    return bytes(range(251)) * (total // 251) + bytes(range(total % 251))


def test_parts_grow_when_the_output_outruns_the_plan_and_the_object_is_whole(stack: Stack,
                                                                             monkeypatch) -> None:
    """With S3's limit made 4 parts, 23 MiB cannot go in parts of 5 MiB: with no length known, the first
    part is the minimum, the next ones grow with the rate the progress shows, and what lands is every
    byte, in order, in at most 4 parts, with S3's full-object CRC32."""
    monkeypatch.setattr(parts, "MAX_PARTS", 4)
    monkeypatch.setattr(s3_sink, "MAX_PARTS", 4)
    data = pattern(23 * MIB + 7)
    consumed = 0
    plan = PartPlan(5 * MIB, progress=lambda: consumed / len(data))
    client = PartRecorder(stack.s3)
    sink = S3MultipartSink(client, stack.target, "grown.bin", part_size=5 * MIB, max_in_flight=2,
                           plan=plan)
    for start in range(0, len(data), MIB):
        consumed = min(len(data), start + MIB)
        sink.write(data[start:start + MIB])
    sink.close()
    assert stack.landed("grown.bin") == data
    sizes = [client.sizes[number] for number in sorted(client.sizes)]
    assert sizes[0] == 5 * MIB and sizes[1] > 5 * MIB  # the first as planned, then larger
    assert sum(sizes) == len(data) and len(sizes) <= 4
    expected = base64.b64encode(zlib.crc32(data).to_bytes(4, "big")).decode()
    assert sink.checksum_crc32 == expected
    head = stack.s3.head_object(Bucket=stack.target, Key="grown.bin", ChecksumMode="ENABLED")
    assert (head["ChecksumCRC32"], head["ChecksumType"]) == (expected, "FULL_OBJECT")


def test_an_object_that_outgrows_the_part_limit_fails_and_leaves_nothing(stack: Stack, monkeypatch) -> None:
    monkeypatch.setattr(s3_sink, "MAX_PARTS", 2)  # S3's 10,000, made small enough to reach here
    sink = S3MultipartSink(stack.s3, stack.target, "huge.bin", part_size=5 * MIB, max_in_flight=2,
                           plan=PartPlan(5 * MIB, expected_size=5 * MIB))
    with pytest.raises(ObjectTooLarge) as refused:
        for _ in range(16):
            sink.write(b"x" * MIB)
        sink.close()
    assert refused.value.response_status == 422 and "parts" in refused.value.message
    assert stack.target_keys() == []
    assert stack.pending_uploads() == []


def test_a_source_declaring_more_than_5_tib_is_refused_before_the_upload(stack: Stack, fault_server,
                                                                         monkeypatch) -> None:
    """The ranged download learns the length from its first range; a CSV target of that length cannot
    be an S3 object, so the call is refused with 422 naming the limit, and nothing is uploaded."""
    monkeypatch.setenv("source_host_allowlist", "http://127.0.0.1:*")
    body = DATA * 100
    declared = MAX_OBJECT_SIZE + 1
    url = fault_server.url("/vast.csv", Script(body=body, etag='"v1"', headers={
        "Content-Range": f"bytes 0-{len(body) - 1}/{declared}"}))
    _, metadata_url = stack.stage(b"", JSON_LAYOUT)
    response = invoke(api_gateway_event(webhook_payload(url, metadata_url, "vast.csv")))
    assert response.status == 422, response.body
    assert response.body["error"]["code"] == "OBJECT_TOO_LARGE"
    assert "5 TiB" in response.body["error"]["message"]
    assert stack.target_keys() == []
    assert stack.pending_uploads() == []
