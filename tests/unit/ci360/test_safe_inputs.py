"""Safe inputs: where sources may be fetched from, where objects may land, and whether they may replace.

Every refused source is proven to be refused before any request: the fault server (on loopback)
records what reaches it, and must have seen nothing.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta, timezone

import pytest

from tests.support.helpers import SAMPLES
from transforms.ci360.allowlist import DEFAULT_PATTERNS, check_source_url, parse_allowlist
from transforms.ci360.keys import (
    check_key_template,
    check_prefix,
    key_safe,
    render,
    target_key,
    template_values,
)
from transforms.ci360.payload import parse_job
from transforms.errors import ValidationError
from transforms.settings import Settings

FIELD = "presignedUrls.dataFile"
CLOCK = datetime(2026, 11, 23, 19, 45, 1, tzinfo=UTC)


def refusal(url: str, allowlist: str | None = None) -> str:
    patterns = parse_allowlist(allowlist) if allowlist else DEFAULT_PATTERNS
    with pytest.raises(ValidationError) as raised:
        check_source_url(url, FIELD, patterns)
    assert raised.value.details == [{"field": FIELD}]
    assert "X-Amz" not in raised.value.message and "secret" not in raised.value.message
    return raised.value.message


# -- the allowlist -------------------------------------------------------------------------------

@pytest.mark.parametrize("url", [
    "https://ci-360-datahub-transfers-demo-us-east-1.s3.amazonaws.com/exports/x_data?X-Amz-Signature=ab",
    "https://bucket.s3.eu-west-1.amazonaws.com:443/k",
    "https://s3.amazonaws.com/bucket/k",
    "HTTPS://Bucket.S3.AmazonAWS.com/k",
])
def test_s3_presigned_urls_pass_the_default_allowlist(url: str) -> None:
    assert check_source_url(url, FIELD) == url


@pytest.mark.parametrize(("url", "says"), [
    ("http://bucket.s3.amazonaws.com/k", "http://bucket.s3.amazonaws.com:80"),  # scheme is part of it
    ("https://bucket.s3.amazonaws.com:8443/k", ":8443"),
    ("https://evil.example.com/k", "evil.example.com"),
    ("https://amazonaws.com.evil.example/k", "matches no"),
    ("https://s3amazonaws.com/k", "matches no"),
    ("ftp://bucket.s3.amazonaws.com/k", "http or https"),
    ("file:///etc/passwd", "http or https"),
    ("gopher://127.0.0.1:70/", "http or https"),
    ("https://user:secret@bucket.s3.amazonaws.com/k", "user info"),
    ("https://bucket.s3.amazonaws.com\\@evil.example/k", "backslash"),
    ("https://bucket.s3.amazonaws.com /k", "spaces"),
    ("https://bucket.s3.amazonaws.com:99999/k", "not a valid URL"),
    ("https:///k", "no host"),
])
def test_other_origins_and_malformed_urls_are_refused(url: str, says: str) -> None:
    assert says in refusal(url)


@pytest.mark.parametrize("url", [
    "http://169.254.169.254/latest/meta-data/iam/security-credentials/",
    "http://169.254.170.2/v2/credentials",  # ECS task credentials
    "http://[fd00:ec2::254]/latest/meta-data/",
    "http://[fe80::1]/",
    "http://[::ffff:169.254.169.254]/",  # IPv4-mapped
    "http://[64:ff9b::a9fe:a9fe]/",  # NAT64
    "http://metadata.google.internal/computeMetadata/v1/",
    "http://100.100.100.200/latest/meta-data/",
])
def test_metadata_and_link_local_addresses_are_refused_whatever_the_allowlist(url: str) -> None:
    assert "never fetched" in refusal(url, "http://*:*,https://*:*,http://169.254.169.254:*,http://[fe80::1]")


@pytest.mark.parametrize("url", [
    "http://127.0.0.1:8080/x", "http://localhost:8080/x", "http://app.localhost:8080/x",
    "http://10.0.0.7/x", "http://192.168.1.1/x", "http://172.16.0.1/x", "http://100.64.0.1/x",
    "http://[::1]:8080/x", "http://[fc00::1]/x",
    "http://2130706433:8080/x", "http://0x7f.1:8080/x", "http://127.1:8080/x",  # 127.0.0.1 in disguise
])
def test_private_and_loopback_hosts_need_a_pattern_that_names_them(url: str) -> None:
    assert "local or private" in refusal(url, "http://*:*")


def test_a_pattern_naming_a_local_host_admits_it() -> None:
    assert check_source_url("http://127.0.0.1:8080/x", FIELD, parse_allowlist("http://127.0.0.1:*"))
    assert check_source_url("http://localhost/x", FIELD, parse_allowlist("http://localhost"))
    assert check_source_url("http://10.1.2.3:9000/x", FIELD, parse_allowlist("http://10.*:9000"))
    assert check_source_url("http://[::1]:9/x", FIELD, parse_allowlist("http://[::1]:*"))
    # The name is matched as written: a disguised loopback does not match the named one.
    assert "local or private" in refusal("http://2130706433:8080/x", "http://127.0.0.1:*")


def test_unspecified_addresses_are_refused() -> None:
    assert "not a host" in refusal("http://0.0.0.0:8080/x", "http://0.0.0.0:*")
    assert "not a host" in refusal("http://[::]:8080/x", "http://[::]:*")


def test_patterns_default_to_https_and_the_schemes_port() -> None:
    patterns = parse_allowlist(" *.example.com , http://files.example.org, https://x.example.net:*")
    assert [(p.scheme, p.host, p.port) for p in patterns] == [
        ("https", "*.example.com", "443"), ("http", "files.example.org", "80"),
        ("https", "x.example.net", "*")]
    assert check_source_url("https://a.example.com/k", FIELD, patterns)
    assert "matches no" in refusal("https://a.example.com:444/k", "*.example.com")
    assert "matches no" in refusal("http://a.example.com/k", "*.example.com")
    assert check_source_url("http://files.example.org/k", FIELD, patterns)
    assert check_source_url("https://x.example.net:9443/k", FIELD, patterns)


@pytest.mark.parametrize("text", ["", " , ", "ftp://x", "https://x/path", "https://u@x", "https://x:",
                                  "https://x:port", "https://[::1", "::1", "https://"])
def test_bad_allowlists_are_configuration_errors(text: str) -> None:
    with pytest.raises(ValueError):
        parse_allowlist(text)


def test_the_allowlist_setting_is_read_and_checked() -> None:
    from transforms.errors import ConfigurationError

    assert Settings.from_env({"s3_bucket_name": "b"}).source_host_allowlist == DEFAULT_PATTERNS
    settings = Settings.from_env({"s3_bucket_name": "b", "source_host_allowlist": "http://127.0.0.1:*"})
    assert [p.text for p in settings.source_host_allowlist] == ["http://127.0.0.1:*"]
    with pytest.raises(ConfigurationError):
        Settings.from_env({"s3_bucket_name": "b", "source_host_allowlist": "gopher://x"})


# -- keys: templates, prefix, confinement --------------------------------------------------------

VALUES = template_values(occurrence_id="bc70ea13-1539", task_id="8eb42f45", task_name="AWS S3 Upload",
                         tenant="dmofin1", now=CLOCK)


def test_placeholders_render_key_safe_values_in_utc() -> None:
    assert render("{taskName}/{tenant}/{date}/{timestamp}_{occurrenceId}_{taskId}.csv", "f", VALUES) == (
        "AWS_S3_Upload/dmofin1/2026-11-23/20261123T194501Z_bc70ea13-1539_8eb42f45.csv")
    east = template_values(occurrence_id="o", task_id="t", task_name="n", tenant="x",
                           now=datetime(2026, 11, 24, 1, 0, tzinfo=timezone(timedelta(hours=5))))
    assert (east["date"], east["timestamp"]) == ("2026-11-23", "20261123T200000Z")
    assert render("{{literal}}-{date}", "f", VALUES) == "{literal}-2026-11-23"


@pytest.mark.parametrize(("value", "safe"), [
    ("AWS S3 Upload", "AWS_S3_Upload"), ("a/b/../c", "a_b_.._c"), ("..", "_"), (".", "_"), ("", "_"),
    ("  ", "_"), ("x=1&y", "x_1_y"), ("ünï\ncödé", "_n_c_d_"), ("v1.2-final_x", "v1.2-final_x"),
])
def test_values_are_made_key_safe(value: str, safe: str) -> None:
    assert key_safe(value) == safe


def test_a_value_can_never_add_a_segment_or_escape_the_prefix() -> None:
    values = template_values(occurrence_id="../../etc", task_id="/abs", task_name="a/b", tenant="..",
                             now=CLOCK)
    key = target_key("{taskName}/{tenant}/{occurrenceId}{taskId}.csv", values, prefix="landing/")
    assert key == "landing/a_b/_/.._.._etc_abs.csv"
    assert key.count("/") == 3


@pytest.mark.parametrize(("filename", "says"), [
    ("{taskname}.csv", "unknown placeholder {taskname}"),
    ("{s3_filename}.csv", "unknown placeholder"),
    ("{date.csv", "without its '}'"),
    ("date}.csv", "without its '{'"),
    ("{{date}.csv", "without its '{'"),
    ("{}.csv", "unknown placeholder {}"),
    ("{a{date}}.csv", "without its '}'"),
])
def test_bad_templates_in_the_send_parameter_are_400_naming_it(filename: str, says: str) -> None:
    with pytest.raises(ValidationError) as raised:
        target_key(filename, VALUES)
    assert says in raised.value.message
    assert raised.value.details == [{"field": "sendParameters.s3_filename"}]


def test_prefix_and_deployment_template_compose_the_key() -> None:
    template = "ci360/{taskName}/dt={date}/{s3_filename}"
    assert target_key("{occurrenceId}.csv", VALUES, prefix="landing/", template=template) == (
        "landing/ci360/AWS_S3_Upload/dt=2026-11-23/bc70ea13-1539.csv")
    # The send parameter keeps its own folders: its '/' are the user's, not a value's.
    assert target_key("sub/a.csv", VALUES, template=template) == "ci360/AWS_S3_Upload/dt=2026-11-23/sub/a.csv"


def test_the_final_key_is_limited_to_1024_bytes() -> None:
    name = "a" * 1000 + ".csv"
    assert target_key(name, VALUES) == name
    with pytest.raises(ValidationError) as raised:
        target_key(name, VALUES, prefix="p" * 30 + "/")
    assert "1024" in raised.value.message
    assert raised.value.details == [{"field": "sendParameters.s3_filename"}]


@pytest.mark.parametrize("filename", ["/abs.csv", "../x.csv", "a/./b.csv", "a\x00b.csv", "a\x85b.csv",
                                      "folder/", "\ud800.csv"])
def test_rendered_names_keep_the_key_rules(filename: str) -> None:
    with pytest.raises(ValidationError):
        target_key(filename, VALUES, prefix="landing/")


@pytest.mark.parametrize("prefix", ["/landing/", "a/../b/", "a/./", "..", "{date}/", "a\tb/"])
def test_bad_prefixes_are_configuration_errors(prefix: str) -> None:
    with pytest.raises(ValueError):
        check_prefix(prefix)


@pytest.mark.parametrize("template", ["{date}/x.csv", "{nope}/{s3_filename}", "/{s3_filename}",
                                      "../{s3_filename}", "{s3_filename", "a}/{s3_filename}"])
def test_bad_key_templates_are_configuration_errors(template: str) -> None:
    with pytest.raises(ValueError):
        check_key_template(template)


def test_parse_job_renders_with_the_injected_clock_and_the_settings() -> None:
    payload = json.loads((SAMPLES / "webhook.json").read_text())
    payload["sendParameters"] = {"s3_filename ": "{tenant}_{timestamp}.csv"}
    settings = Settings(bucket="t", s3_key_prefix="ci360/", key_template="{taskName}/dt={date}/{s3_filename}")
    job = parse_job(payload, settings, clock=lambda: CLOCK)
    task_name = payload["task"]["taskName"]
    assert job.key == f"ci360/{key_safe(task_name)}/dt=2026-11-23/dmofin1_20261123T194501Z.csv"
