"""Property-based tests through the whole handler: whatever a webhook carries gets a 2xx, a 4xx or a
502 for a source failure, never a 500. Sources are the fault server and a closed port on loopback;
the parsers' own properties are tests/unit/test_properties.py.
"""

from __future__ import annotations

import json
import uuid
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from devstack.localstack import closed_port
from tests.support.faultserver import Script
from tests.support.helpers import SAMPLES, api_gateway_event, invoke

SAMPLE = json.loads((SAMPLES / "webhook.json").read_text())
KNOWN_PARAMETERS = ("s3_filename", "s3_filename ", "csv_header", "column_types", "on_bad_value",
                    "compression", "processing_mode", "overwrite")


# -- strategies ----------------------------------------------------------------------------------

odd_text = st.text(st.characters(codec=None, exclude_categories=()), max_size=60)  # surrogates included
texts = st.one_of(st.text(max_size=40), odd_text, st.sampled_from(["", " ", "..", "/", "{", "}", "{date}",
                                                                  "\x00", "\u202e", "\ud800", "é" * 600]))
huge_text = st.builds(lambda c, n: c * n, st.sampled_from(["a", "é", "{", "/", "\ud83d\ude00"]),
                      st.integers(1000, 200_000))
json_scalars = st.one_of(st.none(), st.booleans(), st.integers(), st.floats(), texts)
json_values = st.recursive(json_scalars, lambda inner: st.one_of(
    st.lists(inner, max_size=4), st.dictionaries(texts, inner, max_size=4)), max_leaves=12)
urls = st.one_of(
    texts,
    st.builds("{}://{}{}:{}/{}?X-Amz-Signature=s".format,
              st.sampled_from(["http", "https", "HTTPS", "ftp", "file", "javascript", ""]),
              st.sampled_from(["", "user:pw@", "@", "a@b@"]),
              st.sampled_from(["127.0.0.1", "localhost", "169.254.169.254", "[::1]", "[fe80::1]",
                               "10.0.0.1", "2130706433", "0x7f.1", "b.s3.amazonaws.com", "evil.example",
                               "[::ffff:a9fe:a9fe]", "", "[", "]", "xn--nxasmq6b", "ünï.com",
                               "%31%32%37.0.0.1", "[fd00:ec2::254]"]),
              st.one_of(st.integers(-1, 70_000).map(str), st.sampled_from(["", "*", "x", "08"])),
              texts),
)


def mutate(payload: dict[str, Any], draw: Any) -> dict[str, Any]:
    """The published sample with random fields replaced, dropped or added."""
    payload = json.loads(json.dumps(payload))
    for _ in range(draw(st.integers(0, 4))):
        section = draw(st.sampled_from(["task", "tenant", "presignedUrls", "sendParameters", None]))
        if section is None:
            payload[draw(texts)] = draw(json_values)
            continue
        if draw(st.booleans()) or not isinstance(payload.get(section), dict):
            payload[section] = draw(st.one_of(json_values, st.dictionaries(texts, json_values, max_size=5)))
            continue
        target = payload[section]
        names = list(target) + (list(KNOWN_PARAMETERS) if section == "sendParameters" else [])
        name = draw(st.one_of(st.sampled_from(names), texts)) if names else draw(texts)
        if draw(st.integers(0, 3)) == 0:
            target.pop(name, None)
        else:
            target[name] = draw(st.one_of(json_values, urls, huge_text) if section == "presignedUrls"
                                else st.one_of(json_values, huge_text))
    return payload


csv_fields = st.one_of(st.text(max_size=12), st.sampled_from(['"', '""', '"a,b"', "\x00", "\r"]))
csv_lines = st.lists(st.lists(csv_fields, max_size=6).map(",".join), max_size=3).map("\n".join)
column_entries = st.one_of(
    st.fixed_dictionaries({"columnName": json_values, "dataType": json_values}),
    st.fixed_dictionaries({"COLUMNNAME ": texts, "type": texts}),
    st.dictionaries(texts, json_values, max_size=3),
    json_values,
)
layouts = st.one_of(
    st.binary(max_size=300),
    csv_lines.map(lambda s: s.encode("utf-8", "surrogatepass")),
    st.lists(column_entries, max_size=6).map(lambda c: json.dumps(c).encode()),
    st.dictionaries(st.sampled_from(["columns", "Columns", "x"]), st.lists(column_entries, max_size=4),
                    max_size=2).map(lambda c: json.dumps(c).encode()),
    json_values.map(lambda v: json.dumps(v).encode()),
    st.builds(lambda n: b"a" * n, st.integers(100_000, 300_000)),  # one field past the csv module's limit
    st.builds(lambda n: b"[" * n, st.integers(1, 100_000)),
    st.builds(lambda s: ("\ufeff" + s).encode(), st.text(max_size=50)),
)


# -- the whole handler ---------------------------------------------------------------------------

@st.composite
def handler_payloads(draw: Any, fault_server: Any, closed_port: int) -> Any:
    """A payload whose URLs lead to the fault server (serving random layouts), a closed port, or nowhere."""
    path = f"/{uuid.uuid4().hex}"
    column = st.tuples(st.text(min_size=1, max_size=8), st.sampled_from(["CHARACTER", "NUMERIC", "x"]))
    columns = st.lists(column, min_size=1, max_size=4, unique_by=lambda c: c[0])
    layout = (draw(layouts.filter(lambda b: len(b) < 50_000)) if draw(st.booleans())
              else json.dumps([{"columnName": n, "dataType": t} for n, t in draw(columns)]).encode())
    status = draw(st.sampled_from([200, 200, 200, 200, 403, 404, 503]))
    metadata = fault_server.url(path + "/m", Script(status, layout))
    data = fault_server.url(path + "/d", Script(200, draw(st.one_of(csv_lines.map(str.encode),
                                                                    st.binary(max_size=200)))))
    closed = f"http://127.0.0.1:{closed_port}/x?X-Amz-Signature=s"
    payload = json.loads(json.dumps(SAMPLE))
    payload["task"]["occurrenceId"] = str(uuid.uuid4())
    payload["presignedUrls"] = {"dataFile": draw(st.sampled_from([data, data, closed])),
                                "metadataFile": draw(st.sampled_from([metadata, metadata, closed]))}
    filenames = ["a.csv", "{taskName}/{date}/a.csv.gz", "a.parquet", "a.jsonl", "b/{taskId}.csv"]
    payload["sendParameters"] = {"s3_filename ": draw(st.sampled_from(filenames)) if draw(st.integers(0, 4))
                                 else draw(texts)}
    values = ["true", "false", "sync", "async", "auto", "skip", "null", "snappy", "{}", '{"email": "bigint"}']
    for name in draw(st.lists(st.sampled_from(KNOWN_PARAMETERS[2:]), max_size=3)):
        value = draw(st.sampled_from(values)) if draw(st.integers(0, 3)) else draw(texts)
        payload["sendParameters"][name] = value
    if draw(st.integers(0, 4)) == 0:
        payload = mutate(payload, draw)
    return payload


@pytest.mark.usefixtures("stack")
@settings(max_examples=30, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(data=st.data())
def test_the_handler_answers_2xx_4xx_or_502_for_source_failures(fault_server: Any, data: Any) -> None:
    payload = data.draw(handler_payloads(fault_server, CLOSED_PORT))
    response = invoke(api_gateway_event(payload))
    assert response.status < 500 or (response.status == 502
                                     and response.body["error"]["code"] == "SOURCE_ERROR"), response.body
    if response.status >= 400:
        assert set(response.body["error"]) >= {"code", "message", "details", "timestamp", "requestId"}


_REFUSING = closed_port()  # held bound, never listening, for the module's life: connections are refused
CLOSED_PORT = _REFUSING.getsockname()[1]


# -- what the properties found, kept as plain regressions -------------------------------------------

@pytest.mark.parametrize(("filename", "data", "params", "status", "code"), [
    ("a.parquet", b"1,2\n", {}, 422, "UNPROCESSABLE"),  # more fields than the layout has columns
    ("a.parquet", b"\xff\xfe\n", {}, 422, "UNPROCESSABLE"),  # not UTF-8
    ("a.csv", b"x\n", {"processing_mode": "async"}, 422, "UNPROCESSABLE"),  # no queue in this deployment
])
def test_call_inputs_that_once_gave_500(stack: Any, filename: str, data: bytes, params: dict[str, str],
                                        status: int, code: str) -> None:
    from devstack.localstack import webhook_payload

    data_url, metadata_url = stack.stage(data, json.dumps([{"columnName": "a"}]).encode())
    response = invoke(api_gateway_event(webhook_payload(data_url, metadata_url, filename, **params)))
    assert (response.status, response.body["error"]["code"]) == (status, code), response.body
