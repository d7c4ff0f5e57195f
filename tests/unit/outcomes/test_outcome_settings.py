"""The outcome settings: what a deployment must give for CI360's events, and what it may not."""

from __future__ import annotations

import pytest

from transforms.errors import ConfigurationError
from transforms.settings import Settings

BASE = {"s3_bucket_name": "b", "ci360_tenant_id": "t", "ci360_client_secret_arn": "arn:aws:secretsmanager:x"}


def test_unset_nothing_is_sent_and_the_default_bus_is_used_deployed() -> None:
    settings = Settings.from_env({"s3_bucket_name": "b"})
    assert settings.ci360_events_url is None and settings.event_bus_name == "default"


def test_a_local_invoke_puts_events_only_on_a_bus_it_names() -> None:
    assert Settings.from_env({"s3_bucket_name": "b", "IS_LOCAL": "true"}).event_bus_name is None
    named = Settings.from_env({"s3_bucket_name": "b", "IS_LOCAL": "true", "event_bus_name": "dev-bus"})
    assert named.event_bus_name == "dev-bus"


@pytest.mark.parametrize(("url", "expected"), [
    ("https://extapigwservice-eu-prod.ci360.sas.com", "https://extapigwservice-eu-prod.ci360.sas.com"
                                                      "/marketingGateway/events"),
    ("https://extapigwservice-eu-prod.ci360.sas.com/", "https://extapigwservice-eu-prod.ci360.sas.com"
                                                       "/marketingGateway/events"),
    ("https://gw.example/marketingGateway/events", "https://gw.example/marketingGateway/events"),
])
def test_the_gateway_address_alone_gets_the_events_path(url: str, expected: str) -> None:
    assert Settings.from_env({**BASE, "ci360_events_url": url}).ci360_events_url == expected


@pytest.mark.parametrize(("env", "says"), [
    ({"ci360_events_url": "http://gw.example"}, "must be an https:// URL"),
    ({"ci360_events_url": "http://127.0.0.1:8080"}, "must be an https:// URL"),  # deployed: never http
    ({"ci360_events_url": "https://user:pw@gw.example"}, "without credentials"),
    ({"ci360_events_url": "https://gw.example", "ci360_tenant_id": ""}, "ci360_tenant_id is not set"),
    ({"ci360_events_url": "https://gw.example", "ci360_client_secret_arn": ""}, "ci360_client_secret_arn"),
    ({"event_bus_name": "arn:aws:events:us-east-1:1:event-bus/x"}, "event_bus_name must be the name"),
    ({"jobs_max_receives": "0"}, "jobs_max_receives must be between 1 and 1000"),
])
def test_a_wrong_outcome_setting_is_a_configuration_error_naming_it(env: dict, says: str) -> None:
    with pytest.raises(ConfigurationError, match=says):
        Settings.from_env({**BASE, **env})


def test_plain_http_and_the_plain_secret_only_on_a_local_invoke_to_this_machine() -> None:
    local = {"s3_bucket_name": "b", "IS_LOCAL": "1", "ci360_tenant_id": "t", "ci360_client_secret": "s3cr3t"}
    settings = Settings.from_env({**local, "ci360_events_url": "http://127.0.0.1:8080"})
    assert settings.ci360_events_url == "http://127.0.0.1:8080/marketingGateway/events"
    assert settings.ci360_client_secret == "s3cr3t" and "s3cr3t" not in repr(settings)
    with pytest.raises(ConfigurationError, match="https"):
        Settings.from_env({**local, "ci360_events_url": "http://gw.example"})
    deployed = {**local, "IS_LOCAL": "", "ci360_events_url": "https://gw.example"}
    with pytest.raises(ConfigurationError, match="ci360_client_secret_arn is not set"):
        Settings.from_env(deployed)  # the plain secret is never read deployed
    assert Settings.from_env({**deployed, "ci360_client_secret_arn": "arn:x"}).ci360_client_secret is None
