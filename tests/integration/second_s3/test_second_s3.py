"""The S3 path on two implementations: moto's server and SeaweedFS (a production object store).

moto accepts requests real S3 refuses and returns less than S3 does (no checksum from PutObject or
CompleteMultipartUpload); SeaweedFS checks what it is sent and returns the checksums it stored. Each
test below runs on both targets; CI360's side (the staging bucket behind the presigned URLs) stays on
moto. Where SeaweedFS deviates from AWS, the test's name says so and AWS's documented behaviour is
asserted on moto instead.

Not asserted anywhere: two CompleteMultipartUpload with If-None-Match racing on one key. AWS lets one
win and answers the other 412 (or 409 ConditionalRequestConflict); SeaweedFS checks the condition and
then writes without a lock, and so does moto (tried: both completes land on both stores). What both
do honour, and what is asserted below, is a key taken between our HEAD and our conditional write.
"""

from __future__ import annotations

import base64
import gzip
import io
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import duckdb
import pyarrow.parquet as pq
import pytest

from devstack.localstack import MotoServer, pending_uploads, s3_client, stage, unique_bucket, webhook_payload
from tests.support.faultserver import Script
from tests.support.helpers import HEADER, JSON_LAYOUT, FlakyClient, api_gateway_event, big_audience, invoke
from transforms.ci360.payload import parse_job
from transforms.errors import ConflictError, SinkError
from transforms.jobs.pipeline import UNVERIFIED, run
from transforms.settings import Settings
from transforms.sinks.s3 import S3MultipartSink
from transforms.sources.http import HttpSource

MIB = 1024 * 1024
SMALL = b"0d4a-1,100001,ana@example.com,2021-03-04\n0d4a-2,100002,,2019-12-31\n"


def crc32(data: bytes) -> str:
    return base64.b64encode(zlib.crc32(data).to_bytes(4, "big")).decode()


@dataclass
class Target:
    """The customer's bucket on one S3 implementation; CI360's staging bucket on moto."""

    name: str
    s3: Any
    bucket: str
    staging_s3: Any
    staging: str

    @property
    def confirms_checksums(self) -> bool:
        """S3 returns the stored checksum from PutObject and CompleteMultipartUpload; moto does not."""
        return self.name != "moto"

    def stage(self, data: bytes, metadata: bytes = JSON_LAYOUT) -> tuple[str, str]:
        return stage(self.staging_s3, self.staging, data, metadata)

    def landed(self, key: str) -> bytes:
        return self.s3.get_object(Bucket=self.bucket, Key=key)["Body"].read()

    def keys(self) -> list[str]:
        return [o["Key"] for o in self.s3.list_objects_v2(Bucket=self.bucket).get("Contents", [])]

    def pending(self) -> list[dict[str, Any]]:
        return pending_uploads(self.s3, self.bucket)

    def settings(self, **env: str) -> Settings:
        return Settings.from_env({"s3_bucket_name": self.bucket, "part_size_mb": "5",
                                  "source_host_allowlist": "http://127.0.0.1:*", **env})


@pytest.fixture(params=["moto", "seaweedfs"])
def target(request: pytest.FixtureRequest, moto_server: MotoServer,
           monkeypatch: pytest.MonkeyPatch) -> Iterator[Target]:
    from handler.runtime import s3_client as handler_s3_client

    staging_s3 = s3_client(moto_server.endpoint)
    staging = unique_bucket("ci360-staging")
    staging_s3.create_bucket(Bucket=staging)
    if request.param == "moto":
        s3 = staging_s3
    else:
        s3 = request.getfixturevalue("seaweed_server").client()
        # The function's own client follows the standard variable, as it would any S3 endpoint.
        monkeypatch.setenv("AWS_ENDPOINT_URL_S3", s3.meta.endpoint_url)
    bucket = unique_bucket("target")
    s3.create_bucket(Bucket=bucket)
    monkeypatch.setenv("s3_bucket_name", bucket)
    monkeypatch.setenv("processing_mode", "sync")
    monkeypatch.setenv("part_size_mb", "5")
    handler_s3_client.cache_clear()  # built once per container: rebuilt for this test's endpoint
    yield Target(request.param, s3, bucket, staging_s3, staging)
    handler_s3_client.cache_clear()


def through_the_handler(target: Target, key: str, data: bytes, **params: str) -> Any:
    data_url, metadata_url = target.stage(data)
    return invoke(api_gateway_event(webhook_payload(data_url, metadata_url, key, **params)))


def test_single_put_lands_the_bytes_and_reports_whether_s3_confirmed_the_checksum(target: Target) -> None:
    response = through_the_handler(target, "out/small.csv", SMALL)
    assert response.status == 200, response.body
    assert target.landed("out/small.csv") == HEADER + SMALL
    checksum = response.body["checksum"]
    assert checksum["value"] == crc32(HEADER + SMALL)
    if target.confirms_checksums:
        assert checksum["verified"] is True and "warning" not in checksum
    else:
        assert checksum == {**checksum, "verified": False, "warning": UNVERIFIED}
    assert target.keys() == ["out/small.csv"] and target.pending() == []


def test_multipart_lands_with_a_full_object_crc32(target: Target) -> None:
    data = big_audience(200_000)  # ~14 MB: three 5 MiB parts
    response = through_the_handler(target, "out/big.csv", data)
    assert response.status == 200, response.body
    landed = target.landed("out/big.csv")
    assert landed == HEADER + data
    head = target.s3.head_object(Bucket=target.bucket, Key="out/big.csv", ChecksumMode="ENABLED")
    assert head["ETag"].strip('"').endswith("-3")
    assert (head["ChecksumCRC32"], head["ChecksumType"]) == (crc32(landed), "FULL_OBJECT")
    assert response.body["checksum"]["value"] == crc32(landed)
    assert response.body["checksum"]["verified"] is target.confirms_checksums
    assert target.pending() == []


@pytest.mark.parametrize("key", ["out/big.csv.gz", "out/big.parquet"])
def test_gzip_and_parquet_read_back(target: Target, key: str, tmp_path: Path) -> None:
    data = big_audience(150_000)
    response = through_the_handler(target, key, data)
    assert response.status == 200, response.body
    landed = target.landed(key)
    if key.endswith(".gz"):
        assert gzip.decompress(landed) == HEADER + data
        return
    table = pq.read_table(io.BytesIO(landed))
    assert table.num_rows == 150_000
    assert table.column("external_id").to_pylist()[:3] == [0, 1, 2]
    path = tmp_path / "x.parquet"
    path.write_bytes(landed)
    ((rows, total),) = duckdb.sql(f"select count(*), sum(external_id) from '{path}'").fetchall()
    assert (rows, total) == (150_000, sum(range(150_000)))


def test_overwrite_false_refuses_an_existing_key(target: Target) -> None:
    target.s3.put_object(Bucket=target.bucket, Key="out/taken.csv", Body=b"first")
    response = through_the_handler(target, "out/taken.csv", SMALL, overwrite="false")
    assert response.status == 409, response.body
    assert target.landed("out/taken.csv") == b"first"
    assert target.pending() == []


class TakenMeanwhile:
    """A client whose HEAD says 'free', after which another writer takes the key (the race)."""

    def __init__(self, s3: Any, bucket: str, key: str) -> None:
        self._s3, self._bucket, self._key = s3, bucket, key

    def head_object(self, **kwargs: Any) -> Any:
        try:
            return self._s3.head_object(**kwargs)
        finally:
            self._s3.put_object(Bucket=self._bucket, Key=self._key, Body=b"the other writer")

    def __getattr__(self, name: str) -> Any:
        return getattr(self._s3, name)


@pytest.mark.parametrize("rows", [4, 200_000], ids=["put", "multipart"])
def test_overwrite_false_in_a_race_is_refused_by_the_conditional_write(target: Target, rows: int) -> None:
    data = big_audience(rows)
    data_url, metadata_url = target.stage(data)
    settings = target.settings()
    job = parse_job(webhook_payload(data_url, metadata_url, "race.csv", overwrite="no"), settings)
    with pytest.raises(ConflictError):
        run(job, settings, TakenMeanwhile(target.s3, target.bucket, "race.csv"), HttpSource())
    assert target.landed("race.csv") == b"the other writer"
    assert target.pending() == []


def test_resume_on_a_dropped_connection_lands_identical_bytes(target: Target, fault_server,
                                                             monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("download_connections", "1")  # the single stream's resume (ranges: test_ranged_source)
    data = big_audience(200_000)
    url = fault_server.url("/drops", Script(body=data, etag='"v1"', cuts=[3_000_001, 9_000_000]))
    _, metadata_url = target.stage(b"")
    response = invoke(api_gateway_event(webhook_payload(url, metadata_url, "out/resumed.csv")))
    assert response.status == 200, response.body
    assert target.landed("out/resumed.csv") == HEADER + data
    assert len(fault_server.requests_for("/drops")) == 3
    assert target.pending() == []


def test_a_failed_part_aborts_and_leaves_nothing_pending(target: Target) -> None:
    sink = S3MultipartSink(FlakyClient(target.s3, fail_part=2), target.bucket, "broken", part_size=5 * MIB,
                           max_in_flight=2)
    with pytest.raises(SinkError):
        for _ in range(30):
            sink.write(b"x" * MIB)
        sink.close()
    assert target.keys() == []
    assert target.pending() == []


def test_abort_after_parts_leaves_nothing_pending(target: Target) -> None:
    with pytest.raises(RuntimeError), S3MultipartSink(target.s3, target.bucket, "aborted", part_size=5 * MIB,
                                                      max_in_flight=2) as sink:
        sink.write(b"y" * (11 * MIB))
        assert target.pending() != []  # really mid-upload
        raise RuntimeError("the source failed")
    assert target.keys() == []
    assert target.pending() == []


def test_forced_sse_s3_on_moto_as_on_aws__seaweedfs_needs_an_encryption_key_configured(
        target: Target, monkeypatch: pytest.MonkeyPatch) -> None:
    """AWS always holds SSE-S3's keys; SeaweedFS needs one configured and otherwise refuses the header
    (500). Either way nothing is left behind; only moto shows AWS's behaviour."""
    monkeypatch.setenv("encryption", "sse-s3")
    response = through_the_handler(target, "out/forced.csv", SMALL)
    if target.name == "moto":
        assert response.status == 200, response.body
        head = target.s3.head_object(Bucket=target.bucket, Key="out/forced.csv")
        assert head["ServerSideEncryption"] == "AES256"
    else:
        assert response.status == 502, response.body
        assert response.body["error"]["code"] == "S3_ERROR"
        assert target.keys() == [] and target.pending() == []


def test_the_default_sends_no_encryption_header_which_seaweedfs_accepts(target: Target) -> None:
    """The default (the bucket's own encryption applies) works on a store with no SSE-S3 key too."""
    assert through_the_handler(target, "out/plain.csv", SMALL).status == 200


def test_overwrite_false_settings_reach_the_store(target: Target) -> None:
    """A free key with overwrite=false lands (the HEAD's 404 and the conditional write both pass)."""
    response = through_the_handler(target, "out/free.csv", SMALL, overwrite="false")
    assert response.status == 200, response.body
    assert target.landed("out/free.csv") == HEADER + SMALL
