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
from tests.support.helpers import (
    KNOWN_PARAMETERS,
    SAMPLE,
    api_gateway_event,
    csv_lines,
    invoke,
    layouts,
    mutate,
    texts,
)

# -- strategies ----------------------------------------------------------------------------------


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
