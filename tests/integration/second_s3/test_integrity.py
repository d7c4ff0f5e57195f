"""The result reports what S3 confirmed, and an SDK too old for a parameter is a configuration error.

S3 returns the checksum it stored from PutObject and CompleteMultipartUpload. A loopback proxy
(tests/support/s3proxy.py) in front of SeaweedFS, which does return them, makes the answer wrong, absent or of
another type; the sink must then delete what it wrote (integrity failure) or say "verified": false.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import botocore
import botocore.session
import pytest
from botocore.config import Config

from devstack.localstack import SeaweedServer, pending_uploads, unique_bucket, webhook_payload
from tests.support.helpers import HEADER, JSON_LAYOUT, Stack, api_gateway_event, invoke
from tests.support.s3proxy import WRONG_CRC32, ChecksumProxy
from transforms.ci360.payload import parse_job
from transforms.errors import ConfigurationError, IntegrityError, is_transient
from transforms.jobs.pipeline import UNVERIFIED, run
from transforms.settings import Settings
from transforms.sinks.s3 import S3MultipartSink
from transforms.sources.http import HttpSource

MIB = 1024 * 1024
SIZES = {"put": 3 * MIB, "multipart": 12 * MIB}


def client(endpoint: str, session: Any = None) -> Any:
    session = session or botocore.session.get_session()
    return session.create_client("s3", endpoint_url=endpoint, region_name="us-east-1",
                                 aws_access_key_id="local", aws_secret_access_key="local",
                                 config=Config(signature_version="s3v4"))


@pytest.fixture
def seaweed(seaweed_server: SeaweedServer) -> tuple[Any, str]:
    s3 = seaweed_server.client()
    bucket = unique_bucket("integrity")
    s3.create_bucket(Bucket=bucket)
    return s3, bucket


@pytest.fixture
def proxies(seaweed_server: SeaweedServer) -> Iterator[dict[str, ChecksumProxy]]:
    started: dict[str, ChecksumProxy] = {}

    def start(mode: str) -> ChecksumProxy:
        started[mode] = ChecksumProxy(seaweed_server.endpoint, mode)
        return started[mode]

    yield start  # type: ignore[misc]
    for proxy in started.values():
        proxy.stop()


def write(s3: Any, bucket: str, key: str, size: int, **kwargs: Any) -> S3MultipartSink:
    sink = S3MultipartSink(s3, bucket, key, part_size=5 * MIB, max_in_flight=2, **kwargs)
    with sink:
        for n in range(size // MIB):
            sink.write(bytes([n % 251]) * MIB)
    return sink


def keys(s3: Any, bucket: str) -> list[str]:
    return [o["Key"] for o in s3.list_objects_v2(Bucket=bucket).get("Contents", [])]


@pytest.mark.parametrize("path", SIZES)
def test_seaweedfs_confirms_our_checksum_without_the_proxy(seaweed: tuple[Any, str], path: str) -> None:
    s3, bucket = seaweed
    assert write(s3, bucket, "k", SIZES[path]).verified is True


@pytest.mark.parametrize("mode", ["wrong", "composite"])
@pytest.mark.parametrize("path", SIZES)
def test_a_checksum_s3_did_not_store_is_an_integrity_failure_and_nothing_remains(
        seaweed: tuple[Any, str], proxies: Any, path: str, mode: str) -> None:
    s3, bucket = seaweed
    proxy = proxies(mode)
    with pytest.raises(IntegrityError) as raised:
        write(client(proxy.endpoint), bucket, "bad", SIZES[path], if_none_match=True)
    assert proxy.rewritten == ["PutObject" if path == "put" else "CompleteMultipartUpload"]
    assert raised.value.code == "INTEGRITY_ERROR"
    assert "the object was deleted" in raised.value.message
    assert ("COMPOSITE" if mode == "composite" else WRONG_CRC32) in raised.value.message
    assert keys(s3, bucket) == [] and pending_uploads(s3, bucket) == []
    assert is_transient(raised.value)  # a queued job is tried again


def test_on_a_versioned_bucket_the_previous_version_is_current_again(seaweed: tuple[Any, str],
                                                                     proxies: Any) -> None:
    s3, bucket = seaweed
    s3.put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": "Enabled"})
    s3.put_object(Bucket=bucket, Key="k", Body=b"the good one")
    with pytest.raises(IntegrityError):
        write(client(proxies("wrong").endpoint), bucket, "k", SIZES["put"])
    assert s3.get_object(Bucket=bucket, Key="k")["Body"].read() == b"the good one"
    versions = s3.list_object_versions(Bucket=bucket, Prefix="k").get("Versions", [])
    assert len(versions) == 1


@pytest.mark.parametrize("path", SIZES)
def test_a_store_that_returns_no_checksum_gives_verified_false(seaweed: tuple[Any, str], proxies: Any,
                                                               path: str) -> None:
    s3, bucket = seaweed
    proxy = proxies("strip")
    sink = write(client(proxy.endpoint), bucket, "k", SIZES[path])
    assert proxy.rewritten and sink.verified is False
    assert keys(s3, bucket) == ["k"]  # landed, but unconfirmed


def test_the_handler_answers_502_integrity_error_and_lands_nothing(stack: Stack, seaweed: tuple[Any, str],
                                                                   proxies: Any,
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    from handler.runtime import s3_client

    s3, bucket = seaweed
    data_url, metadata_url = stack.stage(b"a,1,b,2024-01-01\n", JSON_LAYOUT)  # CI360's side: moto
    monkeypatch.setenv("AWS_ENDPOINT_URL_S3", proxies("wrong").endpoint)
    monkeypatch.setenv("s3_bucket_name", bucket)
    monkeypatch.setenv("processing_mode", "sync")
    s3_client.cache_clear()
    try:
        response = invoke(api_gateway_event(webhook_payload(data_url, metadata_url, "out/x.csv")))
    finally:
        s3_client.cache_clear()
    assert response.status == 502, response.body
    assert response.body["error"]["code"] == "INTEGRITY_ERROR"
    assert keys(s3, bucket) == []


def test_an_unconfirmed_checksum_is_flagged_in_the_result(stack: Stack, seaweed: tuple[Any, str],
                                                          proxies: Any) -> None:
    s3, bucket = seaweed
    data = b"a,1,b,2024-01-01\n"
    data_url, metadata_url = stack.stage(data, JSON_LAYOUT)
    settings = Settings.from_env({"s3_bucket_name": bucket, "source_host_allowlist": "http://127.0.0.1:*"})
    job = parse_job(webhook_payload(data_url, metadata_url, "out/x.csv"), settings)
    body = run(job, settings, client(proxies("strip").endpoint), HttpSource()).to_json()
    assert body["checksum"]["verified"] is False and body["checksum"]["warning"] == UNVERIFIED
    assert s3.get_object(Bucket=bucket, Key="out/x.csv")["Body"].read() == HEADER + data
    confirmed = run(job, settings, s3, HttpSource()).to_json()
    assert confirmed["checksum"]["verified"] is True and "warning" not in confirmed["checksum"]


# -- an SDK that does not know a parameter the sink sends ---------------------------------------------


def older_sdk_session(tmp_path: Path, drop: dict[str, list[str]]) -> Any:
    """A botocore session whose S3 model lacks some members, as older botocore releases did
    (ChecksumType arrived in 1.36, IfNoneMatch on CompleteMultipartUpload in 1.35.99)."""
    loader = botocore.session.get_session().get_component("data_loader")
    version = loader.determine_latest_version("s3", "service-2")
    model = copy.deepcopy(loader.load_service_model("s3", "service-2", version))
    for shape, members in drop.items():
        for member in members:
            del model["shapes"][shape]["members"][member]
    folder = tmp_path / "s3" / version
    folder.mkdir(parents=True)
    (folder / "service-2.json").write_text(json.dumps(model))
    session = botocore.session.get_session()  # a fresh loader: the first one cached the full model
    session.get_component("data_loader").search_paths.insert(0, str(tmp_path))
    return session


@pytest.mark.parametrize(("drop", "named"), [
    ({"CreateMultipartUploadRequest": ["ChecksumType"],
      "CompleteMultipartUploadRequest": ["ChecksumType", "IfNoneMatch"]}, "ChecksumType"),
    ({"CompleteMultipartUploadRequest": ["IfNoneMatch"]}, "IfNoneMatch"),
], ids=["before-1.36", "before-1.35.99"])
def test_a_parameter_the_sdk_refuses_is_a_configuration_error_naming_botocore(
        stack: Stack, tmp_path: Path, drop: dict[str, list[str]], named: str) -> None:
    old = client(stack.s3.meta.endpoint_url, older_sdk_session(tmp_path, drop))
    with pytest.raises(ConfigurationError) as raised:
        write(old, stack.target, "k", SIZES["multipart"], if_none_match=True)
    message = raised.value.message
    assert raised.value.code == "CONFIGURATION_ERROR"
    assert f"botocore {botocore.__version__}" in message and named in message
    assert "could not be reached" not in message
    assert not is_transient(raised.value)
    assert stack.target_keys() == [] and stack.pending_uploads() == []
