"""The fan-out's assembly on a second S3 implementation, SeaweedFS, which (unlike moto) checks what it
is sent and returns the checksums it stored: the composed object (planned, copied in batches, completed
from the store's own list of parts) has the FULL_OBJECT CRC32 combined from the range objects', as the
store reports it (``verified``), and a copy conditional on a range object's ETag is refused when that
object was replaced. Two retries that moto cannot show: the upload a dead PrepareAssembly left is aborted
by the store's own date of it, and a Finalize whose complete the store did recognises its object by what
the store reports. CI360's side (presigned URLs) stays on moto.
"""

from __future__ import annotations

import base64
import dataclasses
import time
import zlib
from typing import Any

import boto3
import pytest

from devstack.localstack import MotoServer, s3_client, stage, unique_bucket, webhook_payload
from tests.support.helpers import JSON_LAYOUT
from tests.support.s3proxy import ChecksumProxy
from transforms.ci360.payload import parse_job
from transforms.errors import SinkError
from transforms.fanout import abandon, copy_parts, finalize, plan, prepare_assembly
from transforms.fanout.abandon import CLOCK_SLACK_S
from transforms.fanout.local import catch, land_every_range, run_in_process
from transforms.fanout.naming import range_object
from transforms.jobs.services import Services
from transforms.settings import MIB, Settings
from transforms.sources.http import HttpSource

ROW = b'0d4a1b2c-0000-4000-8000-%012d,%d,"o\'neil, %d\nnext",2024-01-%02d\n'


def crc32(data: bytes) -> str:
    return base64.b64encode(zlib.crc32(data).to_bytes(4, "big")).decode()


@pytest.fixture
def seaweed(seaweed_server: Any) -> tuple[Any, str]:
    s3 = seaweed_server.client()
    bucket = unique_bucket("target")
    s3.create_bucket(Bucket=bucket)
    return s3, bucket


def landing(seaweed: tuple[Any, str], moto_server: MotoServer,
            key: str) -> tuple[Any, Settings, Services, bytes]:
    """The job (its CI360 side on moto), settings of 6 MiB ranges and one part a copy batch, services on
    SeaweedFS, and the data."""
    s3, bucket = seaweed
    staging_s3 = s3_client(moto_server.endpoint)
    staging = unique_bucket("ci360-staging")
    staging_s3.create_bucket(Bucket=staging)
    data = b"".join(ROW % (n, n, n, n % 28 + 1) for n in range(200_000))  # ~14 MB
    data_url, metadata_url = stage(staging_s3, staging, data, JSON_LAYOUT)
    settings = dataclasses.replace(
        Settings.from_env({"s3_bucket_name": bucket, "part_size_mb": "5",
                           "source_host_allowlist": "http://127.0.0.1:*"}),
        fanout_range_bytes=6 * MIB, fanout_min_bytes=1, download_range_bytes=MIB, fanout_copy_batch_bytes=1)
    services = Services(s3=s3, http=HttpSource.from_settings(settings))
    return parse_job(webhook_payload(data_url, metadata_url, key), settings), settings, services, data


def test_the_assembled_object_is_verified_by_the_store(seaweed: tuple[Any, str],
                                                       moto_server: MotoServer) -> None:
    """Planned, copied by three copy batches, completed from the store's ListParts."""
    s3, bucket = seaweed
    job, settings, services, data = landing(seaweed, moto_server, "fan/audience.csv")
    result = run_in_process(job, settings, services)
    landed = s3.get_object(Bucket=bucket, Key="fan/audience.csv")["Body"].read()
    assert landed.endswith(data) and landed.startswith(b"identity_id,")
    assert result["checksum"]["value"] == crc32(landed)
    assert result["checksum"]["verified"] is True  # SeaweedFS returned our combined CRC32 as the object's
    assert result["fanout"]["ranges"] == 3 and result["fanout"]["copyBatches"] == 3
    assert [o["Key"] for o in s3.list_objects_v2(Bucket=bucket).get("Contents", [])] == ["fan/audience.csv"]
    assert s3.list_multipart_uploads(Bucket=bucket).get("Uploads", []) == []


def test_a_copy_of_a_replaced_range_object_is_refused(seaweed: tuple[Any, str],
                                                       moto_server: MotoServer) -> None:
    """A range object replaced after its manifest was read (a late retry's): the copy batch's
    ``CopySourceIfMatch`` is refused by the store, and Abandon leaves nothing (the planned upload aborted)."""
    s3, bucket = seaweed
    job, settings, services, _ = landing(seaweed, moto_server, "fan/replaced.csv")
    state = plan(job, settings, services)
    assert land_every_range(state, settings, services) == {"redo": []}
    prepared = prepare_assembly(state, settings, services)
    assert s3.list_multipart_uploads(Bucket=bucket).get("Uploads", [])
    replaced = range_object(state["staging"], 1)
    s3.put_object(Bucket=bucket, Key=replaced, Body=b"y" * (6 * MIB))
    with pytest.raises(SinkError) as refused:
        for item in prepared["batches"]:
            copy_parts(state, item, settings, services)
    assert refused.value.s3_code == "PreconditionFailed"
    abandon(state, catch(refused.value), settings, services)
    assert s3.list_multipart_uploads(Bucket=bucket).get("Uploads", []) == []
    assert s3.list_objects_v2(Bucket=bucket).get("Contents", []) == []


def test_a_retried_prepare_assembly_aborts_the_upload_its_dead_run_started(seaweed: tuple[Any, str],
                                                                           moto_server: MotoServer) -> None:
    """A PrepareAssembly that died after starting its upload, before storing its plan: the next run aborts
    that upload (started at the key since the plan began, as the store dates it; moto dates every upload
    2010) and starts its own; an upload at the key from before the fan-out is another writer's and stays."""
    s3, bucket = seaweed
    key = "fan/orphaned.csv"
    job, settings, services, data = landing(seaweed, moto_server, key)
    others = s3.create_multipart_upload(Bucket=bucket, Key=key)["UploadId"]
    time.sleep(CLOCK_SLACK_S + 1)  # S3 dates uploads to the second
    state = plan(job, settings, services)
    assert land_every_range(state, settings, services) == {"redo": []}
    orphan = s3.create_multipart_upload(Bucket=bucket, Key=key, ChecksumAlgorithm="CRC32",
                                        ChecksumType="FULL_OBJECT")["UploadId"]
    prepared = prepare_assembly(state, settings, services)
    uploads = {u["UploadId"] for u in s3.list_multipart_uploads(Bucket=bucket).get("Uploads", [])}
    assert others in uploads and orphan not in uploads and len(uploads) == 2
    for item in prepared["batches"]:
        copy_parts(state, item, settings, services)
    result = finalize(state, settings, services)
    landed = s3.get_object(Bucket=bucket, Key=key)["Body"].read()
    assert landed.endswith(data) and result["checksum"]["verified"] is True
    assert result["checksum"]["value"] == crc32(landed)
    assert [u["UploadId"] for u in s3.list_multipart_uploads(Bucket=bucket).get("Uploads", [])] == [others]
    s3.abort_multipart_upload(Bucket=bucket, Key=key, UploadId=others)


def test_a_finalize_retried_after_the_store_completed_recognises_its_object(
        seaweed: tuple[Any, str], seaweed_server: Any, moto_server: MotoServer) -> None:
    """The store completes the upload but every answer is lost (the SDK's three tries): Finalize fails;
    run again, the store says NoSuchUpload, and the object at the key is this fan-out's (its owner
    metadata, size and CRC32, as the store reports them): the landing stands, with overwrite=false not
    taken for a conflict, and nothing is left pending."""
    s3, bucket = seaweed
    key = "fan/completed.csv"
    completes = rf"^POST /{bucket}/fan/completed\.csv\?uploadId="
    proxy = ChecksumProxy(seaweed_server.endpoint, "none", lose=completes, losses=3)
    try:
        job, settings, services, data = landing(seaweed, moto_server, key)
        job = dataclasses.replace(job, overwrite=False)
        through = boto3.client("s3", endpoint_url=proxy.endpoint, aws_access_key_id="seaweedfs",
                               aws_secret_access_key="seaweedfs", region_name="us-east-1")
        services = dataclasses.replace(services, s3=through)
        state = plan(job, settings, services)
        assert land_every_range(state, settings, services) == {"redo": []}
        prepared = prepare_assembly(state, settings, services)
        for item in prepared["batches"]:
            copy_parts(state, item, settings, services)
        with pytest.raises(SinkError) as lost:
            finalize(state, settings, services)
        assert lost.value.transient and len(proxy.lost) == 3
        result = finalize(state, settings, services)
    finally:
        proxy.stop()
    landed = s3.get_object(Bucket=bucket, Key=key)["Body"].read()
    assert landed.endswith(data) and result["key"] == key
    assert result["checksum"]["value"] == crc32(landed)
    assert s3.list_multipart_uploads(Bucket=bucket).get("Uploads", []) == []
    assert [o["Key"] for o in s3.list_objects_v2(Bucket=bucket).get("Contents", [])] == [key]
