"""The client secret: read once per container, in either form Secrets Manager may hold it, and scrubbed
from every log line from the moment it is known."""

from __future__ import annotations

import base64
import logging

import pytest
from botocore.exceptions import ClientError

from transforms.outcomes.client_secret import ClientSecret
from transforms.redact import scrub


class FakeSecretsManager:
    def __init__(self, answer: dict | Exception) -> None:
        self.answer = answer
        self.calls = 0

    def get_secret_value(self, SecretId: str) -> dict:  # noqa: N803 (boto3's name)
        self.calls += 1
        if isinstance(self.answer, Exception):
            raise self.answer
        return self.answer


@pytest.mark.parametrize("stored", ["unit-secret-plain-1", '{"client_secret": "unit-secret-plain-1"}',
                                    '{"clientSecret": "unit-secret-plain-1", "tenant": "x"}'])
def test_read_once_in_either_form(stored: str) -> None:
    fake = FakeSecretsManager({"SecretString": stored})
    secret = ClientSecret("arn:aws:secretsmanager:us-east-1:1:secret:ci360", None, lambda: fake)
    assert secret.value() == secret.value() == "unit-secret-plain-1"
    assert fake.calls == 1
    assert "unit-secret-plain-1" not in repr(secret)


def test_a_refused_read_names_the_code_and_is_tried_again() -> None:
    refused = ClientError({"Error": {"Code": "AccessDeniedException", "Message": "no"}}, "GetSecretValue")
    fake = FakeSecretsManager(refused)
    secret = ClientSecret("arn:aws:secretsmanager:x", None, lambda: fake)
    for _ in range(2):
        with pytest.raises(Exception, match=r"could not be read \(AccessDeniedException\)"):
            secret.value()
    assert fake.calls == 2


def test_once_known_the_secret_and_its_base64_form_never_reach_a_log(caplog: pytest.LogCaptureFixture,
                                                                    ) -> None:
    value = "unit-secret-for-logs-7"
    ClientSecret("arn", None, lambda: FakeSecretsManager({"SecretString": value})).value()
    encoded = base64.b64encode(value.encode()).decode()
    with caplog.at_level(logging.DEBUG):
        logging.getLogger("anything").debug("leaking %s and %s", value, encoded)
    assert value not in caplog.text and encoded not in caplog.text
    assert scrub(f"x {value} y") == "x <redacted> y"


def test_botocore_s_debug_dump_of_the_answer_is_scrubbed_before_the_value_is_known() -> None:
    body = b'{"ARN":"arn:x","Name":"ci360","SecretString":"{\\"client_secret\\":\\"not-yet-known-1\\"}"}'
    logged = scrub(f"Response body:\n{body!r}")
    assert "not-yet-known-1" not in logged and "SecretString" in logged


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_a_refusal_re_reads_a_rotated_secret_at_most_once_per_interval() -> None:
    from transforms.outcomes.client_secret import REFRESH_EVERY_S

    fake, clock = FakeSecretsManager({"SecretString": "unit-secret-old-1"}), Clock()
    secret = ClientSecret("arn:aws:secretsmanager:x", None, lambda: fake, clock=clock)
    assert secret.value() == "unit-secret-old-1"
    assert secret.refresh() is False and fake.calls == 2  # the first refusal re-reads: unchanged
    fake.answer = {"SecretString": "unit-secret-new-2"}
    clock.now += REFRESH_EVERY_S - 1
    assert secret.refresh() is False and fake.calls == 2  # too soon: not read again
    assert secret.value() == "unit-secret-old-1"
    clock.now += 1
    assert secret.refresh() is True and fake.calls == 3
    assert secret.value() == "unit-secret-new-2" and fake.calls == 3
    assert scrub("unit-secret-new-2") == "<redacted>"


def test_a_refused_re_read_keeps_the_secret_it_had() -> None:
    fake = FakeSecretsManager({"SecretString": "unit-secret-kept-3"})
    secret = ClientSecret("arn:aws:secretsmanager:x", None, lambda: fake)
    secret.value()
    fake.answer = ClientError({"Error": {"Code": "ThrottlingException", "Message": "slow"}}, "GetSecretValue")
    assert secret.refresh() is False and secret.value() == "unit-secret-kept-3"


def test_a_secret_given_as_a_setting_has_nothing_to_re_read() -> None:
    assert ClientSecret(None, "unit-secret-setting-4").refresh() is False
