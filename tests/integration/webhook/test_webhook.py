"""End to end through the Lambda handler: real presigned URLs and a real S3 API, both on moto's server."""

from __future__ import annotations

import base64
import bz2
import gzip
import io
import json
import random
import string
import subprocess
import zlib

import pytest
from backports import zstd
from botocore.exceptions import CredentialRetrievalError

from devstack.localstack import webhook_payload
from tests.support.helpers import DATA, HEADER, JSON_LAYOUT, SAMPLES, Stack, api_gateway_event, invoke
from transforms.formats.parallel_gzip import ParallelGzipWriter
from transforms.jobs.pipeline import UNVERIFIED


def run_webhook(stack: Stack, filename: str, data: bytes = DATA, layout: bytes = JSON_LAYOUT, **params: str):
    data_url, metadata_url = stack.stage(data, layout)
    return invoke(api_gateway_event(webhook_payload(data_url, metadata_url, filename, **params)))


def test_csv_gets_a_header_row_then_the_data_bytes_unchanged(stack: Stack) -> None:
    response = run_webhook(stack, "audiences/my_audience.csv")
    assert response.status == 200, response.body
    assert stack.landed("audiences/my_audience.csv") == HEADER + DATA
    assert response.body["rows"] == 4
    assert response.body["bytesRead"] == len(DATA)
    assert response.body["bytesWritten"] == len(HEADER) + len(DATA)
    assert response.body["format"] == "csv"
    crc32 = base64.b64encode(zlib.crc32(HEADER + DATA).to_bytes(4, "big")).decode()
    # moto returns no checksum from PutObject (S3 does): ours is reported, flagged as unconfirmed.
    assert response.body["checksum"] == {"algorithm": "CRC32", "type": "FULL_OBJECT", "value": crc32,
                                         "verified": False, "warning": UNVERIFIED}
    assert response.body["bucket"] == stack.target
    assert "url" not in response.body  # no presigned link unless a TTL is configured
    assert stack.target_keys() == ["audiences/my_audience.csv"]


@pytest.mark.parametrize(("filename", "decompress", "fmt"), [
    ("out/a.csv.gz", gzip.decompress, "csv.gz"),
    ("out/a.gz", gzip.decompress, "csv.gz"),
    ("out/a.csv.bz2", bz2.decompress, "csv.bz2"),
    ("out/a.csv.zst", zstd.decompress, "csv.zst"),
])
def test_compressed_targets_round_trip_byte_for_byte(stack: Stack, filename, decompress, fmt) -> None:
    response = run_webhook(stack, filename)
    assert response.status == 200, response.body
    landed = stack.landed(filename)
    assert decompress(landed) == HEADER + DATA
    assert response.body["format"] == fmt
    assert response.body["bytesWritten"] == len(landed)


def wordy_audience(rows: int, seed: int = 7) -> bytes:
    """Rows of words from a small vocabulary: text in which a slower deflate finds more (level 9 lands
    about 11% smaller than level 1 here), where the repetitive ``big_audience`` differs by 2%."""
    draw = random.Random(seed)
    vocabulary = ["".join(draw.choices(string.ascii_lowercase, k=draw.randrange(3, 10))) for _ in range(3000)]
    return b"".join(b'%d,"%s",%s@%s.com,%s\n' % (
        i, " ".join(draw.choices(vocabulary[:200], k=4)).encode(), draw.choice(vocabulary).encode(),
        draw.choice(vocabulary[:50]).encode(), " ".join(draw.choices(vocabulary, k=2)).encode())
        for i in range(rows))


def test_gzip_level_reaches_the_writer(stack: Stack, monkeypatch: pytest.MonkeyPatch) -> None:
    """The same audience (6.6 MB: two 4 MiB compression blocks) lands at ``gzip_level`` 1 and 9 as
    exactly the bytes our gzip writer makes at that level, the two differ and 9 is the smaller, and
    both read back byte for byte with Python's gzip and with gunzip. (The header's XFL byte is 0 at
    every level, so the bytes and the size are what tell the levels apart.)"""
    data = wordy_audience(100_000)
    landed = {}
    for level in (1, 9):
        monkeypatch.setenv("gzip_level", str(level))
        key = f"level{level}.csv.gz"
        response = run_webhook(stack, key, data=data)
        assert response.status == 200, response.body
        landed[level] = stack.landed(key)
        assert response.body["bytesWritten"] == len(landed[level])
        assert gzip.decompress(landed[level]) == HEADER + data
        gunzip = subprocess.run(["gzip", "-dc"], input=landed[level], capture_output=True, timeout=60,
                                check=True)
        assert gunzip.stdout == HEADER + data
        expected = io.BytesIO()
        writer = ParallelGzipWriter(expected, level=level)
        writer.write(HEADER + data)
        writer.close()
        assert landed[level] == expected.getvalue(), level
    assert len(landed[9]) < 0.95 * len(landed[1]), {level: len(body) for level, body in landed.items()}


def test_unknown_extension_is_passed_through_as_csv(stack: Stack) -> None:
    response = run_webhook(stack, "export.txt")
    assert response.status == 200
    assert stack.landed("export.txt") == HEADER + DATA


def test_csv_layout_metadata_gives_the_same_header(stack: Stack) -> None:
    response = run_webhook(stack, "a.csv", layout=b"identity_id,external_id,email,signup_date")
    assert response.status == 200
    assert stack.landed("a.csv") == HEADER + DATA


def test_shared_samples_land_with_their_layouts(stack: Stack) -> None:
    data = (SAMPLES / "data.csv").read_bytes()
    layout = (SAMPLES / "metadata.json").read_bytes()
    response = run_webhook(stack, "samples.csv", data=data, layout=layout)
    assert response.status == 200, response.body
    assert stack.landed("samples.csv") == (
        b"identity_id,external_id,email,signup_date,last_order_dttm,order_total\n" + data)
    assert response.body["rows"] == 3


def test_csv_header_false_gives_the_raw_bytes(stack: Stack) -> None:
    response = run_webhook(stack, "raw.csv", csv_header="false")
    assert response.status == 200
    assert stack.landed("raw.csv") == DATA


def test_csv_header_environment_default(stack: Stack, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("csv_header", "false")
    assert run_webhook(stack, "raw.csv").status == 200
    assert stack.landed("raw.csv") == DATA
    assert run_webhook(stack, "with.csv", csv_header="true").status == 200
    assert stack.landed("with.csv") == HEADER + DATA


def test_empty_audience_lands_a_header_only_file(stack: Stack) -> None:
    response = run_webhook(stack, "empty.csv", data=b"")
    assert response.status == 200
    assert stack.landed("empty.csv") == HEADER
    assert response.body["rows"] == 0


def test_empty_audience_without_header_lands_an_empty_object(stack: Stack) -> None:
    response = run_webhook(stack, "empty.csv.gz", data=b"", csv_header="false")
    assert response.status == 200
    assert gzip.decompress(stack.landed("empty.csv.gz")) == b""


def test_base64_body_is_decoded(stack: Stack) -> None:
    data_url, metadata_url = stack.stage(DATA, JSON_LAYOUT)
    payload = webhook_payload(data_url, metadata_url, "b64.csv")
    response = invoke(api_gateway_event(payload, base64_body=True))
    assert response.status == 200, response.body
    assert stack.landed("b64.csv") == HEADER + DATA


def test_send_parameter_names_are_compared_without_whitespace(stack: Stack) -> None:
    data_url, metadata_url = stack.stage(DATA, JSON_LAYOUT)
    payload = webhook_payload(data_url, metadata_url, "ignored.csv")
    payload["sendParameters"] = {"  s3_filename\t": "spaced.csv", "some_other_param": {"x": 1}}
    response = invoke(api_gateway_event(payload))
    assert response.status == 200, response.body
    assert stack.target_keys() == ["spaced.csv"]


def test_result_url_only_when_a_ttl_is_configured(stack: Stack, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("result_url_ttl", "300")
    response = run_webhook(stack, "linked.csv")
    assert response.status == 200
    assert "X-Amz-Signature=" in response.body["url"]
    assert "X-Amz-Expires=300" in response.body["url"]


def test_a_result_link_that_cannot_be_signed_is_reported_and_the_landing_succeeds(
        stack: Stack, monkeypatch: pytest.MonkeyPatch, lambda_logs) -> None:
    """The object landed; only the link is missing. The function's S3 client fails to sign it (its
    credential provider fails, quoting a token, as a container or SSO provider may): the answer is 200
    with the landing, no ``url`` and a ``urlError`` saying why, and the error is logged, without the
    provider's message."""
    from handler.runtime import s3_client

    monkeypatch.setenv("result_url_ttl", "300")
    secret = "SECRETTOKEN-of-the-provider"

    def cannot_sign(**_: object) -> None:
        raise CredentialRetrievalError(provider="container-role", error_msg=f"token {secret} expired")

    events = s3_client().meta.events  # the client the function lands and signs with
    events.register_first("before-sign.s3.GetObject", cannot_sign, unique_id="test-cannot-sign")
    try:
        response = run_webhook(stack, "unlinked.csv")
    finally:
        events.unregister("before-sign.s3.GetObject", unique_id="test-cannot-sign")
    assert response.status == 200, response.body
    assert stack.landed("unlinked.csv") == HEADER + DATA
    assert stack.target_keys() == ["unlinked.csv"] and stack.pending_uploads() == []
    assert response.body["rows"] == 4 and "url" not in response.body
    assert response.body["urlError"] == {
        "code": "CredentialRetrievalError",
        "message": "the link to the result could not be signed (CredentialRetrievalError); the object did "
                   "land"}
    logged = [json.loads(line) for line in lambda_logs.getvalue().splitlines()]
    (failure,) = [r for r in logged if r.get("message") == "could not sign a link to the result"]
    assert failure["level"] == "ERROR" and failure["error_code"] == "CredentialRetrievalError"
    assert secret not in lambda_logs.getvalue() and secret not in json.dumps(response.body)


def test_multipart_upload_of_a_file_larger_than_a_part(stack: Stack, monkeypatch: pytest.MonkeyPatch) -> None:
    """Several 5 MiB parts uploaded concurrently still assemble into the exact bytes, in order."""
    monkeypatch.setenv("part_size_mb", "5")
    monkeypatch.setenv("upload_concurrency", "3")
    row = b"0d4a1b2c-0000-4000-8000-%012d,%d,\"person, %d\",2024-01-01\n"
    data = b"".join(row % (i, i, i) for i in range(400_000))  # about 23 MB: five parts
    response = run_webhook(stack, "big.csv.gz", data=data)
    assert response.status == 200, response.body
    assert gzip.decompress(stack.landed("big.csv.gz")) == HEADER + data
    response = run_webhook(stack, "big.csv", data=data)
    assert stack.landed("big.csv") == HEADER + data
    assert response.body["rows"] == 400_000
    assert stack.pending_uploads() == []
