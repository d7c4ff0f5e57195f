from __future__ import annotations

import json

import pytest

from tests.support.helpers import SAMPLES
from transforms.ci360.payload import parse_job
from transforms.errors import ConfigurationError, ValidationError
from transforms.settings import Settings

SETTINGS = Settings(bucket="target")


def sample() -> dict:
    return json.loads((SAMPLES / "webhook.json").read_text())


def test_the_published_sample_payload_parses_with_its_trailing_space_key() -> None:
    job = parse_job(sample(), SETTINGS)
    assert job.key == "my_audience.csv"
    assert job.occurrence_id == "bc70ea13-1539-4448-ac29-d152da52b2a3"
    assert job.tenant == "dmofin1"
    assert job.bucket == "target"
    assert job.csv_header is True
    assert "X-Amz" not in repr(job)  # the URLs are kept out of any repr that might be logged


def test_unknown_send_parameters_and_sections_are_ignored() -> None:
    payload = sample()
    payload["sendParameters"].update({"other": 3, "nested": {"a": [1]}, "none": None})
    payload["somethingNew"] = {"x": 1}
    assert parse_job(payload, SETTINGS).send_parameters["other"] == "3"


def test_send_parameter_overrides_the_deployment_default() -> None:
    payload = sample()
    payload["sendParameters"]["csv_header"] = " FALSE "
    assert parse_job(payload, SETTINGS).csv_header is False


@pytest.mark.parametrize("url", ["https://[:80/x", "http://[::1/data.csv", "https://]/x"])
def test_a_url_that_urlsplit_refuses_is_a_400_naming_the_field(url: str) -> None:
    """Found by the webhook property test: urlsplit raises on an unclosed IPv6 bracket."""
    payload = sample()
    payload["presignedUrls"]["metadataFile"] = url
    with pytest.raises(ValidationError) as refused:
        parse_job(payload, SETTINGS)
    assert refused.value.response_status == 400
    assert refused.value.details == [{"field": "presignedUrls.metadataFile"}]
    assert url not in refused.value.message


@pytest.mark.parametrize("payload", [None, [], "x", 3])
def test_non_object_payloads_are_refused(payload) -> None:
    with pytest.raises(ValidationError):
        parse_job(payload, SETTINGS)


def test_settings_from_environment() -> None:
    settings = Settings.from_env({"s3_bucket_name": " b ", "csv_header": "no", "part_size_mb": "8",
                                  "result_url_ttl": "60"})
    assert (settings.bucket, settings.csv_header, settings.part_size, settings.result_url_ttl) == (
        "b", False, 8 << 20, 60)


@pytest.mark.parametrize("env", [{}, {"s3_bucket_name": "b", "part_size_mb": "4"},
                                 {"s3_bucket_name": "b", "csv_header": "perhaps"},
                                 {"s3_bucket_name": "b", "gzip_level": "11"},
                                 {"s3_bucket_name": "b", "read_timeout": "soon"}])
def test_bad_settings_are_configuration_errors(env) -> None:
    with pytest.raises(ConfigurationError):
        Settings.from_env(env)
