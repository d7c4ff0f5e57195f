"""Hostile and broken sources (issue 9), the parts that need no S3: a read timeout against the fault
server (in this process, on 127.0.0.1), schema building at the column limit, scrubbed tracebacks and
the default allowlist. Through the handler, on moto: tests/integration/webhook/test_hostile_sources.py.
"""

from __future__ import annotations

import io
import logging
import time
import uuid
from typing import Any

import pytest

from devstack.localstack import webhook_payload
from tests.support.faultserver import Script
from tests.support.helpers import assert_no_secret

# --- time is bounded -----------------------------------------------------------------------------


def test_a_trickle_within_the_read_timeout_is_stopped_by_the_read_timeout_without_a_deadline(
        fault_server) -> None:
    """Outside Lambda (the CLI) there is no deadline: a source silent for longer than read_timeout
    fails as a timeout on that one read, not after the whole piece."""
    from transforms.errors import SourceError
    from transforms.sources.http import HttpSource

    url = fault_server.url("/quiet", Script(body=b"x" * 100, trickle=(10, 5.0)))
    started = time.monotonic()
    source = HttpSource(read_timeout=1.0)
    with pytest.raises(SourceError, match="broke off") as caught, source.open(url, "data") as stream:
        stream.read(100)
    assert caught.value.timed_out and time.monotonic() - started < 4.0


def test_schema_building_is_linear_in_colliding_names() -> None:
    """24,000 distinct names that all normalise to ``a_`` (a 100 KB layout) took 44 s."""
    from transforms.ci360.layout import parse_layout
    from transforms.schema.columns import build_schema

    header = ",".join("a" + chr(0x4E00 + i) for i in range(24_000)).encode()
    layout = parse_layout(header, max_columns=30_000)
    started = time.monotonic()
    schema = build_schema(layout)
    assert time.monotonic() - started < 2.0
    assert len(set(schema.names)) == 24_000 and schema.names[:3] == ["a_", "a__2", "a__3"]


# --- no secret in any log ------------------------------------------------------------------------


def test_tracebacks_are_scrubbed_for_every_handler() -> None:
    late = io.StringIO()
    handler = logging.StreamHandler(late)
    log = logging.getLogger(f"test.{uuid.uuid4().hex}")
    log.addHandler(handler)
    try:
        try:
            raise ValueError("GET /b/k?X-Amz-Signature=deadbeefsignature failed")
        except ValueError:
            log.exception("failed %s", "/b/k?&X-Amz-Security-Token=SECRETTOKEN")
    finally:
        log.removeHandler(handler)
    assert "ValueError" in late.getvalue()
    assert_no_secret(late.getvalue())


# --- safer defaults and stricter inputs ----------------------------------------------------------

def _settings(**env: str) -> Any:
    from transforms.settings import Settings

    return Settings.from_env({"s3_bucket_name": "target", **env})


@pytest.mark.parametrize("host", [
    "abc123.execute-api.us-east-1.amazonaws.com", "my-lb-1234.us-east-1.elb.amazonaws.com",
    "vpce-0a1b-c2d3.execute-api.us-east-1.vpce.amazonaws.com", "ec2-3-4-5-6.compute-1.amazonaws.com",
    "s3.x.execute-api.us-east-1.amazonaws.com", "s3.amazonaws.com.evil.example"])
def test_the_default_allowlist_admits_only_s3_hostnames(host: str) -> None:
    from transforms.ci360.payload import parse_job
    from transforms.errors import ValidationError

    payload = webhook_payload(f"https://{host}/d?X-Amz-Signature=x", "https://b.s3.amazonaws.com/m", "o.csv")
    with pytest.raises(ValidationError, match="presignedUrls.dataFile"):
        parse_job(payload, _settings())


@pytest.mark.parametrize("host", [
    "ci-360-datahub-transfers-demo-us-east-1.s3.amazonaws.com", "s3.amazonaws.com",
    "my.bucket.s3.eu-west-1.amazonaws.com", "s3.eu-west-1.amazonaws.com", "b-1.s3-us-west-2.amazonaws.com",
    "b-1.s3.dualstack.ap-southeast-2.amazonaws.com", "s3.dualstack.us-east-1.amazonaws.com",
    "b-1.s3.cn-north-1.amazonaws.com.cn", "s3-fips.us-gov-west-1.amazonaws.com"])
def test_the_default_allowlist_admits_s3_in_every_style(host: str) -> None:
    from transforms.ci360.payload import parse_job

    job = parse_job(webhook_payload(f"https://{host}/b/d?X-Amz-Signature=x", f"https://{host}/b/m", "o.csv"),
                    _settings())
    assert job.data_url.startswith(f"https://{host}/")
