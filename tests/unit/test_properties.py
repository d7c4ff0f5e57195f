"""Property-based tests: whatever reaches the parsers gets a result or a 4xx, never a 5xx or a crash.

Payloads, layouts, keys, templates, column names and URLs are drawn at random (hypothesis), and no
network is used; the property through the whole handler is tests/integration/webhook/test_properties.py.
"""

from __future__ import annotations

import base64
import json
import string
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from handler.responses import status_for
from tests.support.helpers import (
    SAMPLE,
    huge_text,
    json_values,
    layouts,
    mutate,
    texts,
    urls,
)
from transforms.ci360.allowlist import DEFAULT_PATTERNS, check_source_url, parse_allowlist
from transforms.ci360.delivery import webhook_payload as decode_event
from transforms.ci360.keys import (
    PLACEHOLDERS,
    check_key_template,
    check_prefix,
    key_safe,
    render,
    target_key,
    template_values,
    validate_key,
)
from transforms.ci360.layout import Column, Layout, parse_layout
from transforms.ci360.payload import Job, parse_job
from transforms.errors import ConnectorError
from transforms.schema.columns import build_schema, normalise_name, parse_overrides
from transforms.settings import Settings

FAST = settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
CLOCK = datetime(2026, 11, 23, 19, 45, 1, tzinfo=UTC)
SETTINGS = (
    Settings(bucket="target"),
    Settings(bucket="target", source_host_allowlist=parse_allowlist("http://127.0.0.1:*")),
    Settings(bucket="target", s3_key_prefix="landing/", overwrite=False,
             key_template="ci360/{taskName}/dt={date}/{s3_filename}"),
)


def accepted_or_4xx(call: Any, *args: Any, **kwargs: Any) -> Any:
    """The call's result, or the ConnectorError it raised, which must map to a 4xx status."""
    try:
        return call(*args, **kwargs)
    except ConnectorError as error:
        status = status_for(error)
        assert 400 <= status < 500, (status, error.code, error.message)
        assert error.message and isinstance(error.message, str)
        json.dumps(error.details)  # the details go into a JSON body as they are
        return error


# -- strategies ----------------------------------------------------------------------------------


@st.composite
def payloads(draw: Any) -> Any:
    kind = draw(st.integers(0, 4))
    if kind == 0:
        return draw(json_values)
    return mutate(SAMPLE, draw)


@st.composite
def events(draw: Any) -> Any:
    payload = draw(payloads())
    body = draw(st.one_of(
        st.builds(json.dumps, st.just(payload)),
        texts, huge_text,
        st.builds(lambda n: "[" * n, st.integers(1, 100_000)),  # nesting deeper than the parser's stack
        st.builds(lambda n: '{"a":' * n, st.integers(1, 100_000)),
        st.just(payload), st.none(), st.integers(), st.lists(st.integers(), max_size=2),
    ))
    encode = draw(st.booleans())
    if encode and isinstance(body, str):
        body = base64.b64encode(body.encode("utf-8", "surrogatepass")).decode("ascii")
        if draw(st.booleans()):
            body = body[: draw(st.integers(0, len(body)))] + draw(st.text(max_size=3))
    event: dict[str, Any] = {"body": body, "isBase64Encoded": draw(st.one_of(st.booleans(), json_values))}
    if draw(st.integers(0, 5)) == 0:
        event = draw(st.one_of(json_values, st.just(payload)))
    return event


# -- webhook decoding and parse_job --------------------------------------------------------------

@FAST
@given(payload=payloads(), which=st.sampled_from(range(len(SETTINGS))))
@example(payload=SAMPLE, which=0)
def test_parse_job_accepts_or_refuses_with_4xx(payload: Any, which: int) -> None:
    settings_ = SETTINGS[which]
    job = accepted_or_4xx(parse_job, payload, settings_, clock=lambda: CLOCK)
    if isinstance(job, Job):
        assert job.key.startswith(settings_.s3_key_prefix)
        assert validate_key(job.key) == job.key
        for url in (job.data_url, job.metadata_url):
            assert check_source_url(url, "u", settings_.source_host_allowlist) == url
        json.dumps(job.send_parameters)
        for text in (job.occurrence_id, job.task_id, job.task_name, job.tenant, job.key):
            text.encode("utf-8")  # written to logs, S3 and job records as UTF-8


@FAST
@given(event=events())
@example(event={"body": "\x80", "isBase64Encoded": True})
@example(event={"body": "[" * 5_000})
def test_webhook_decoding_accepts_or_refuses_with_4xx(event: Any) -> None:
    payload = accepted_or_4xx(decode_event, event)
    if not isinstance(payload, ConnectorError):
        accepted_or_4xx(parse_job, payload, SETTINGS[0], clock=lambda: CLOCK)


# -- layouts and names ---------------------------------------------------------------------------

@FAST
@example(raw=json.dumps([{"columnName": "a\ud800"}]).encode(), overrides="")
@example(raw=b"a" * 131_073, overrides="")
@example(raw=b"[" * 5_000, overrides="")
@given(raw=layouts, overrides=st.one_of(texts, st.dictionaries(texts, texts, max_size=3).map(json.dumps)))
def test_layouts_parse_or_refuse_with_4xx(raw: bytes, overrides: str) -> None:
    layout = accepted_or_4xx(parse_layout, raw)
    if isinstance(layout, Layout):
        assert layout.columns
        layout.header_line()  # the CSV header row is written from it
        schema = accepted_or_4xx(build_schema, layout)
        assert len(set(schema.names)) == len(layout.columns)
        parsed = accepted_or_4xx(parse_overrides, overrides, "sendParameters.column_types")
        if isinstance(parsed, dict):
            accepted_or_4xx(build_schema, layout, parsed)


@FAST
@given(names=st.lists(st.one_of(texts, huge_text), min_size=1, max_size=8, unique=True))
def test_column_names_normalise_to_unique_glue_names(names: list[str]) -> None:
    for name in names:
        normal = normalise_name(name)
        assert normal and set(normal) <= set(string.ascii_lowercase + string.digits + "_")
        assert not normal[0].isdigit()
    layout = Layout(tuple(Column(name) for name in names), "csv")
    schema = build_schema(layout)
    assert len(set(schema.names)) == len(names)


# -- keys and templates --------------------------------------------------------------------------

template_text = st.one_of(texts, huge_text, st.lists(st.one_of(
    st.sampled_from([f"{{{p}}}" for p in PLACEHOLDERS] + ["{s3_filename}", "{", "}", "{{", "}}", "/", ".."]),
    st.text(max_size=8)), max_size=8).map("".join))
moments = st.datetimes(min_value=datetime(1970, 1, 2), max_value=datetime(2200, 1, 1),
                       timezones=st.sampled_from([UTC, timezone(timedelta(hours=-11)),
                                                  timezone(timedelta(hours=14))]))


@FAST
@given(key=st.one_of(texts, huge_text, template_text))
def test_validate_key_returns_the_key_or_refuses_with_4xx(key: str) -> None:
    result = accepted_or_4xx(validate_key, key)
    if isinstance(result, str):
        assert len(result.encode("utf-8")) <= 1024 and not result.startswith("/")


@FAST
@given(filename=template_text, template=st.one_of(st.none(), template_text), prefix=texts,
       values=st.tuples(texts, texts, texts, texts), now=moments)
def test_templates_render_a_confined_key_or_refuse_with_4xx(filename: str, template: str | None, prefix: str,
                                                            values: tuple[str, ...], now: datetime) -> None:
    try:  # deployment settings: refused at start-up (ValueError -> ConfigurationError), never at a call
        prefix = check_prefix(prefix)
        template = check_key_template(template) if template else None
    except ValueError:
        prefix, template = "", None
    rendered_values = template_values(occurrence_id=values[0], task_id=values[1], task_name=values[2],
                                      tenant=values[3], now=now)
    for value in rendered_values.values():
        assert value == key_safe(value) and "/" not in value and value.strip(".")
    key = accepted_or_4xx(target_key, filename, rendered_values, prefix=prefix, template=template)
    if isinstance(key, str):
        assert key.startswith(prefix) and validate_key(key) == key
    accepted_or_4xx(render, filename, "sendParameters.s3_filename", rendered_values)


# -- the allowlist -------------------------------------------------------------------------------

@FAST
@given(url=urls, allowlist=st.one_of(st.none(), texts, st.lists(st.sampled_from(
    ["http://127.0.0.1:*", "https://*", "http://*:*", "*.amazonaws.com", "http://[::1]:*", "localhost",
     "http://10.*", "https://[fe80::1]"]), min_size=1, max_size=3).map(",".join)))
def test_allowlist_check_accepts_or_refuses_with_4xx(url: str, allowlist: str | None) -> None:
    try:
        patterns = parse_allowlist(allowlist) if allowlist is not None else DEFAULT_PATTERNS
    except ValueError:
        patterns = DEFAULT_PATTERNS
    result = accepted_or_4xx(check_source_url, url, "presignedUrls.dataFile", patterns)
    if isinstance(result, str):
        import urllib3.util

        parsed = urllib3.util.parse_url(url)
        assert parsed.scheme in ("http", "https") and parsed.auth is None
        assert not (parsed.host or "").startswith(("169.254.", "[fe80", "[fd00:ec2"))
    else:
        assert "X-Amz-Signature" not in result.message
