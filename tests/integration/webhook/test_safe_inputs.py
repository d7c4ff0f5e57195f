"""Safe inputs: where sources may be fetched from, where objects may land, and whether they may replace.

Every refused source is proven to be refused before any request: the fault server (on loopback)
records what reaches it, and must have seen nothing.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import pytest

from devstack.localstack import webhook_payload
from tests.support.faultserver import Script
from tests.support.helpers import DATA, HEADER, JSON_LAYOUT, Stack, api_gateway_event, invoke
from transforms.ci360.allowlist import parse_allowlist
from transforms.ci360.payload import parse_job
from transforms.errors import ConflictError, SinkError
from transforms.jobs.pipeline import run
from transforms.settings import Settings
from transforms.sinks.s3 import S3MultipartSink
from transforms.sources.http import HttpSource

CLOCK = datetime(2026, 11, 23, 19, 45, 1, tzinfo=UTC)


# -- the allowlist -------------------------------------------------------------------------------


def scripted_urls(fault_server: Any) -> tuple[str, str]:
    return (fault_server.url("/data", Script(200, DATA)),
            fault_server.url("/metadata", Script(200, JSON_LAYOUT)))


@pytest.mark.parametrize("field", ["dataFile", "metadataFile"])
def test_a_refused_source_gets_400_and_no_request_is_made(stack: Stack, fault_server, monkeypatch,
                                                         field: str) -> None:
    data_url, metadata_url = scripted_urls(fault_server)
    monkeypatch.setenv("source_host_allowlist", "https://*.amazonaws.com")
    payload = webhook_payload(data_url, metadata_url, "refused.csv")
    if field == "dataFile":  # only one of the two is off the list; neither may be fetched
        payload["presignedUrls"]["metadataFile"] = "https://b.s3.amazonaws.com/m?X-Amz-Signature=x"
    else:
        payload["presignedUrls"]["dataFile"] = "https://b.s3.amazonaws.com/d?X-Amz-Signature=x"
    response = invoke(api_gateway_event(payload))
    assert response.status == 400, response.body
    assert response.body["error"]["code"] == "VALIDATION_ERROR"
    assert response.body["error"]["details"] == [{"field": f"presignedUrls.{field}"}]
    assert "SECRETTOKEN" not in json.dumps(response.body) and "deadbeef" not in json.dumps(response.body)
    assert fault_server.requests == []
    assert stack.target_keys() == []


@pytest.mark.parametrize("host", ["localhost", "2130706433", "127.1", "[::ffff:127.0.0.1]"])
def test_loopback_in_other_spellings_is_refused_by_the_local_allowlist(stack: Stack, fault_server,
                                                                     host: str) -> None:
    data_url, metadata_url = scripted_urls(fault_server)
    payload = webhook_payload(data_url.replace("127.0.0.1", host), metadata_url, "refused.csv")
    response = invoke(api_gateway_event(payload))
    assert response.status == 400, response.body
    assert fault_server.requests == []


def test_metadata_address_is_refused_even_when_everything_is_allowed(stack: Stack, fault_server,
                                                                     monkeypatch) -> None:
    monkeypatch.setenv("source_host_allowlist", "http://*:*")
    _, metadata_url = scripted_urls(fault_server)
    payload = webhook_payload("http://169.254.169.254/latest/meta-data/", metadata_url, "imds.csv")
    response = invoke(api_gateway_event(payload))
    assert response.status == 400
    assert "never fetched" in response.body["error"]["message"]
    assert fault_server.requests == []


def test_an_allowed_source_is_fetched_and_a_redirect_is_not_followed(stack: Stack, fault_server) -> None:
    data_url, metadata_url = scripted_urls(fault_server)
    assert invoke(api_gateway_event(webhook_payload(data_url, metadata_url, "ok.csv"))).status == 200
    assert stack.landed("ok.csv") == HEADER + DATA
    # A 3xx from an allowed origin is an error, never a hop to the place it names.
    fault_server.scripts["/data"] = Script(302, b"")
    response = invoke(api_gateway_event(webhook_payload(data_url, metadata_url, "moved.csv")))
    assert response.status == 502
    assert [path for path, _ in fault_server.requests].count("/data") == 2


# -- keys: templates, prefix, confinement --------------------------------------------------------


def test_templated_key_through_the_handler(stack: Stack, monkeypatch) -> None:
    monkeypatch.setattr("transforms.ci360.payload.utc_now", lambda: CLOCK)
    monkeypatch.setenv("s3_key_prefix", "landing/")
    monkeypatch.setenv("key_template", "ci360/{taskName}/dt={date}/{s3_filename}")
    data_url, metadata_url = stack.stage(DATA, JSON_LAYOUT)
    payload = webhook_payload(data_url, metadata_url, "{occurrenceId}.csv", occurrence_id="occ-1")
    response = invoke(api_gateway_event(payload))
    assert response.status == 200, response.body
    assert response.body["key"] == "landing/ci360/AWS_S3_Upload/dt=2026-11-23/occ-1.csv"
    assert stack.target_keys() == ["landing/ci360/AWS_S3_Upload/dt=2026-11-23/occ-1.csv"]


def test_a_bad_template_in_the_call_is_400_and_nothing_is_fetched(stack: Stack, fault_server) -> None:
    data_url, metadata_url = scripted_urls(fault_server)
    response = invoke(api_gateway_event(webhook_payload(data_url, metadata_url, "{when}.csv")))
    assert response.status == 400
    assert response.body["error"]["details"] == [{"field": "sendParameters.s3_filename"}]
    assert "{when}" in response.body["error"]["message"]
    assert fault_server.requests == []


# -- overwrite ----------------------------------------------------------------------------------

def test_overwrite_false_refuses_an_existing_key_with_409_before_fetching(stack: Stack, fault_server) -> None:
    stack.s3.put_object(Bucket=stack.target, Key="taken.csv", Body=b"first")
    data_url, metadata_url = scripted_urls(fault_server)
    response = invoke(api_gateway_event(webhook_payload(data_url, metadata_url, "taken.csv",
                                                        overwrite="false")))
    assert response.status == 409, response.body
    assert response.body["error"]["code"] == "CONFLICT"
    assert "taken.csv" in response.body["error"]["message"]
    assert stack.landed("taken.csv") == b"first"
    assert fault_server.requests == []  # the head_object check comes before any transfer


def test_overwrite_false_from_the_environment_and_a_free_key_lands(stack: Stack, monkeypatch) -> None:
    monkeypatch.setenv("overwrite", "false")
    data_url, metadata_url = stack.stage(DATA, JSON_LAYOUT)
    first = invoke(api_gateway_event(webhook_payload(data_url, metadata_url, "once.csv")))
    assert first.status == 200, first.body
    again = invoke(api_gateway_event(webhook_payload(data_url, metadata_url, "once.csv")))
    assert again.status == 409
    # The call may still say otherwise.
    forced = invoke(api_gateway_event(webhook_payload(data_url, metadata_url, "once.csv", overwrite="true")))
    assert forced.status == 200


def test_overwrite_is_the_default(stack: Stack) -> None:
    stack.s3.put_object(Bucket=stack.target, Key="replace.csv", Body=b"old")
    data_url, metadata_url = stack.stage(DATA, JSON_LAYOUT)
    assert invoke(api_gateway_event(webhook_payload(data_url, metadata_url, "replace.csv"))).status == 200
    assert stack.landed("replace.csv") == HEADER + DATA


def test_a_bad_overwrite_value_is_400(stack: Stack, fault_server) -> None:
    data_url, metadata_url = scripted_urls(fault_server)
    response = invoke(api_gateway_event(webhook_payload(data_url, metadata_url, "x.csv", overwrite="maybe")))
    assert response.status == 400
    assert response.body["error"]["details"] == [{"field": "sendParameters.overwrite"}]


class SneakyWriter:
    """An S3 client whose HEAD says 'free', after which another writer takes the key (the race)."""

    def __init__(self, s3: Any, bucket: str, key: str) -> None:
        self._s3, self._bucket, self._key = s3, bucket, key
        self.conditions: list[Any] = []

    def head_object(self, **kwargs: Any) -> Any:
        try:
            return self._s3.head_object(**kwargs)
        finally:
            self._s3.put_object(Bucket=self._bucket, Key=self._key, Body=b"the other writer")

    def put_object(self, **kwargs: Any) -> Any:
        self.conditions.append(("put_object", kwargs.get("IfNoneMatch")))
        return self._s3.put_object(**kwargs)

    def complete_multipart_upload(self, **kwargs: Any) -> Any:
        self.conditions.append(("complete_multipart_upload", kwargs.get("IfNoneMatch")))
        return self._s3.complete_multipart_upload(**kwargs)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._s3, name)


@pytest.mark.parametrize(("rows", "call"), [(4, "put_object"), (200_000, "complete_multipart_upload")])
def test_a_key_taken_during_the_run_is_409_and_nothing_is_pending(stack: Stack, rows: int, call: str) -> None:
    data = b"".join(b"0d4a-%d,%d,a%d@example.com,2021-03-04\n" % (i, i, i) for i in range(rows))
    data_url, metadata_url = stack.stage(data, JSON_LAYOUT)
    settings = Settings(bucket=stack.target, part_size=5 << 20,
                        source_host_allowlist=parse_allowlist("http://127.0.0.1:*"))
    job = parse_job(webhook_payload(data_url, metadata_url, "race.csv", overwrite="no"), settings)
    client = SneakyWriter(stack.s3, stack.target, "race.csv")
    with pytest.raises(ConflictError):
        run(job, settings, client, HttpSource())
    assert client.conditions == [(call, "*")]  # moto's server honours IfNoneMatch on both, as S3 does
    assert stack.landed("race.csv") == b"the other writer"
    assert stack.pending_uploads() == []


def test_the_sink_writes_conditionally_only_when_asked(stack: Stack) -> None:
    stack.s3.put_object(Bucket=stack.target, Key="k.csv", Body=b"old")
    with S3MultipartSink(stack.s3, stack.target, "k.csv", part_size=5 << 20, max_in_flight=2) as sink:
        sink.write(b"new")
    assert stack.landed("k.csv") == b"new"
    conditional = S3MultipartSink(stack.s3, stack.target, "k.csv", part_size=5 << 20, max_in_flight=2,
                                  if_none_match=True)
    with pytest.raises(SinkError) as raised, conditional as sink:
        sink.write(b"x" * (6 << 20))
    assert raised.value.s3_code == "PreconditionFailed"
    assert stack.landed("k.csv") == b"new"
    assert stack.pending_uploads() == []


def test_overwrite_false_is_409_before_a_job_is_queued(async_stack, monkeypatch,
                                                       fault_server) -> None:
    monkeypatch.setenv("processing_mode", "async")
    async_stack.stack.s3.put_object(Bucket=async_stack.stack.target, Key="queued.csv", Body=b"first")
    data_url, metadata_url = scripted_urls(fault_server)
    payload = webhook_payload(data_url, metadata_url, "queued.csv", overwrite="false")
    response = invoke(api_gateway_event(payload))
    assert response.status == 409, response.body
    assert async_stack.queued() == []
    assert fault_server.requests == []
