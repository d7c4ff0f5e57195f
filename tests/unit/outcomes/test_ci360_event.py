"""The outcome, back to CI360: the JWT as CI360 verifies it, the event's attributes, and a delivery that
is bounded and retried only where a retry can help (against the fake gateway, a thread of this process)."""

from __future__ import annotations

import base64
import time
from collections.abc import Iterator

import jwt as pyjwt
import pytest
from joserfc import jwt as jose_jwt
from joserfc.errors import BadSignatureError
from joserfc.jwk import OctKey

from devstack.ci360_gateway import FakeCI360Gateway
from devstack.localstack import webhook_payload
from transforms.ci360.payload import parse_job
from transforms.errors import SourceError
from transforms.outcomes.ci360_event import Gateway, bearer_token, event_body
from transforms.outcomes.client_secret import ClientSecret
from transforms.outcomes.final import Final
from transforms.settings import Settings

TENANT = "0dh01d000a00013a3a2cac00"
SECRET = "MTA2NDEwYTg4bTBjODJoZmRoOG5jZjZpazhnZ2g0Mmpt-unit"
SETTINGS = Settings.from_env({"s3_bucket_name": "target", "source_host_allowlist": "https://*.example"})
URL = "https://staging.example/exports/1019/abc_data?X-Amz-Signature=deadbeefsignature&X-Amz-Security-Token=T"


def job():
    payload = webhook_payload(URL, URL.replace("_data", "_metadata"), "ci360/audience.parquet", "occ-1")
    return parse_job(payload, SETTINGS)


@pytest.fixture
def gateway() -> Iterator[FakeCI360Gateway]:
    with FakeCI360Gateway(TENANT, SECRET) as fake:
        yield fake


def sender(fake: FakeCI360Gateway, timeout_s: float = 5.0, secret: str = SECRET) -> Gateway:
    return Gateway(fake.events_url, TENANT, ClientSecret(None, secret), timeout_s)


def test_the_token_is_hs256_over_the_tenant_keyed_with_the_base64_encoded_secret() -> None:
    token = bearer_token(TENANT, SECRET)
    key = OctKey.import_key(base64.b64encode(SECRET.encode()))
    verified = jose_jwt.decode(token, key, algorithms=["HS256"])
    assert verified.header == {"alg": "HS256", "typ": "JWT"}
    assert verified.claims == {"clientID": TENANT}  # nothing else: no exp, no iat
    with pytest.raises(BadSignatureError):  # keyed with the base64 text, not the raw secret
        jose_jwt.decode(token, OctKey.import_key(SECRET.encode()), algorithms=["HS256"])
    # As SAS's own samples sign it (PyJWT, the base64-encoded secret's bytes).
    assert token == pyjwt.encode({"clientID": TENANT}, base64.b64encode(SECRET.encode()), algorithm="HS256")


def test_a_landing_is_told_with_every_attribute_as_text() -> None:
    result = {"status": "succeeded", "bucket": "target", "key": "ci360/audience.parquet", "format": "parquet",
              "rows": 4, "bytesWritten": 1234, "seconds": 0.52, "url": "https://x?X-Amz-Signature=s"}
    body = event_body(Final.of(job(), result, "sync"), SETTINGS)
    assert body == {"eventName": "ci360_s3_connector_outcome", "subject_id": "ci360-s3-connector",
                    "status": "succeeded", "occurrenceId": "occ-1",
                    "taskId": "8eb42f45-7991-48ae-a30a-8e033a88668d", "taskName": "AWS S3 Upload",
                    "responseTrackingCode": "55e09dc2-1303-4be2-aa0f-3d9877154a27", "bucket": "target",
                    "key": "ci360/audience.parquet", "format": "parquet", "rows": "4", "bytesWritten": "1234",
                    "seconds": "0.52", "errorCode": "", "errorMessage": ""}


def test_a_failure_is_told_with_its_code_and_a_scrubbed_message() -> None:
    error = SourceError(f"the data file {URL} answered 403", "data", 403)
    body = event_body(Final.of(job(), error, "async"), SETTINGS)
    assert body["status"] == "failed" and body["errorCode"] == "SOURCE_ERROR"
    assert body["key"] == "ci360/audience.parquet" and body["rows"] == ""
    assert "deadbeefsignature" not in body["errorMessage"] and "X-Amz" not in body["errorMessage"]
    assert body["errorMessage"].startswith("the data file https://staging.example/exports/1019/abc_data")


def test_the_identity_and_event_name_are_the_settings() -> None:
    settings = Settings.from_env({"s3_bucket_name": "t", "ci360_event_name": "audienceOutcome",
                                  "ci360_identity_attribute": "login_id", "ci360_identity_value": "svc"})
    body = event_body(Final.of(job(), {"rows": 1}, "sync"), settings)
    assert body["eventName"] == "audienceOutcome" and body["login_id"] == "svc" and "subject_id" not in body


def test_delivered_at_once(gateway: FakeCI360Gateway) -> None:
    delivery = sender(gateway).send({"eventName": "e", "status": "succeeded"})
    assert (delivery.delivered, delivery.attempts, delivery.status) == (True, 1, 201)
    assert gateway.received == [{"eventName": "e", "status": "succeeded"}]


def test_500_then_200_is_retried(gateway: FakeCI360Gateway) -> None:
    gateway.fail_first = 1
    delivery = sender(gateway).send({"eventName": "e"})
    assert (delivery.delivered, delivery.attempts, delivery.status) == (True, 2, 201)
    assert [r.status for r in gateway.requests] == [500, 201]


def test_401_is_not_retried(gateway: FakeCI360Gateway) -> None:
    gateway.mode = "refuse"
    delivery = sender(gateway).send({"eventName": "e"})
    assert (delivery.delivered, delivery.attempts, delivery.status) == (False, 1, 401)
    assert len(gateway.requests) == 1


def test_a_wrong_secret_is_refused_by_the_gateway_and_not_retried(gateway: FakeCI360Gateway) -> None:
    delivery = sender(gateway, secret="not-the-secret").send({"eventName": "e"})
    assert (delivery.delivered, delivery.status, delivery.attempts) == (False, 401, 1)
    assert gateway.requests[0].reason.startswith("token refused")


def test_a_hanging_gateway_is_bounded_by_the_timeout(gateway: FakeCI360Gateway) -> None:
    gateway.mode = "hang"
    started = time.monotonic()
    delivery = sender(gateway, timeout_s=1.5).send({"eventName": "e"})
    took = time.monotonic() - started
    assert not delivery.delivered and delivery.error == "timed out" and delivery.status is None
    assert delivery.attempts >= 2  # one hang does not take the whole budget
    assert 1.0 < took < 3.0


def test_the_callers_time_left_bounds_it_too(gateway: FakeCI360Gateway) -> None:
    gateway.mode = "hang"
    started = time.monotonic()
    delivery = sender(gateway, timeout_s=30).send({"eventName": "e"}, time_left_s=0.8)
    assert not delivery.delivered and time.monotonic() - started < 2.0


def test_no_time_left_sends_nothing(gateway: FakeCI360Gateway) -> None:
    delivery = sender(gateway).send({"eventName": "e"}, time_left_s=0.1)
    assert (delivery.delivered, delivery.attempts) == (False, 0) and gateway.requests == []


def test_an_unreachable_gateway_is_reported(refusing_port: int) -> None:
    started = time.monotonic()
    delivery = Gateway(f"http://127.0.0.1:{refusing_port}/marketingGateway/events", TENANT,
                       ClientSecret(None, SECRET), 3.0).send({"eventName": "e"})
    assert not delivery.delivered and delivery.error == "could not connect" and delivery.attempts == 3
    assert time.monotonic() - started < 3.5


def test_a_secret_that_cannot_be_read_is_reported_without_a_request(gateway: FakeCI360Gateway) -> None:
    delivery = Gateway(gateway.events_url, TENANT, ClientSecret("arn:aws:secretsmanager:x", None, None),
                       5.0).send({"eventName": "e"})
    assert (delivery.delivered, delivery.attempts) == (False, 0) and "no client secret" in delivery.error
    assert gateway.requests == []


class RotatingSecretsManager:
    """Secrets Manager as a warm container sees it: the secret it read, then rotated."""

    def __init__(self, value: str) -> None:
        self.value, self.calls = value, 0

    def get_secret_value(self, SecretId: str) -> dict:  # noqa: N803 (boto3's name)
        self.calls += 1
        return {"SecretString": self.value}


def test_a_secret_rotated_while_warm_is_read_again_on_the_401_and_sent_at_once(
        gateway: FakeCI360Gateway) -> None:
    from transforms.outcomes.client_secret import REFRESH_EVERY_S

    store = RotatingSecretsManager("the-secret-before-rotation")
    slept: list[float] = []
    now = [0.0]
    secret = ClientSecret("arn:aws:secretsmanager:x", None, lambda: store, clock=lambda: now[0])
    sending = Gateway(gateway.events_url, TENANT, secret, 5.0, sleep=slept.append)
    refused = sending.send({"eventName": "e"})  # the old secret, re-read unchanged: refused, not retried
    assert (refused.delivered, refused.attempts, refused.status, store.calls) == (False, 1, 401, 2)
    store.value = SECRET  # rotated
    now[0] += REFRESH_EVERY_S
    delivered = sending.send({"eventName": "e"})
    assert (delivered.delivered, delivered.attempts, delivered.status, store.calls) == (True, 2, 201, 3)
    assert slept == [] and [r.status for r in gateway.requests] == [401, 401, 201]
    again = sending.send({"eventName": "e"})  # the new token is kept
    assert (again.delivered, again.attempts, store.calls) == (True, 1, 3)
