"""What several test modules share, unit and integration alike: the project's root and CI360's samples,
the stack's buckets and the Lambda context around a handler, the sample audiences, builders of jobs and
events, a fault-injecting client, the property tests' strategies, the secrets no output may show, the
command line run in-process. Test modules import these from here, never from one another nor from a
conftest (the servers and the stack's resources live in ``devstack``, shared with the demo and the
benchmark)."""

from __future__ import annotations

import base64
import json
import threading
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import boto3
from botocore.exceptions import ClientError
from hypothesis import strategies as st

from devstack.localstack import object_keys, pending_uploads, stage, webhook_payload
from transforms.ci360.layout import parse_layout
from transforms.ci360.payload import parse_job
from transforms.schema.columns import TypedSchema, build_schema
from transforms.settings import Settings

ROOT = Path(__file__).resolve().parents[2]  # the project
SAMPLES = Path(__file__).resolve().parent / "fixtures" / "ci360"  # copies of shared/ci360/samples

# -- the stack and the Lambda around the handlers -------------------------------------------------

@dataclass
class Stack:
    """A staging bucket (CI360's side) and a target bucket (the customer's), both fresh."""

    s3: Any
    staging: str
    target: str

    def stage(self, data: bytes, metadata: bytes) -> tuple[str, str]:
        return stage(self.s3, self.staging, data, metadata)

    def landed(self, key: str) -> bytes:
        return self.s3.get_object(Bucket=self.target, Key=key)["Body"].read()

    def target_keys(self) -> list[str]:
        return object_keys(self.s3, self.target)

    def pending_uploads(self) -> list[dict[str, Any]]:
        return pending_uploads(self.s3, self.target)


class LambdaContext:
    """The attributes the Lambda runtime's context offers and the handler (via Powertools) reads."""

    function_name = "ci360-s3-connector-test-webhook"
    function_version = "$LATEST"
    memory_limit_in_mb = 1024
    invoked_function_arn = "arn:aws:lambda:us-east-1:123456789012:function:ci360-s3-connector-test-webhook"

    def __init__(self) -> None:
        self.aws_request_id = str(uuid.uuid4())

    def get_remaining_time_in_millis(self) -> int:
        return 29_000


class ClockedContext(LambdaContext):
    """A Lambda context whose time left runs down with the wall clock, as the real one does."""

    def __init__(self, budget_s: float) -> None:
        super().__init__()
        self._ends = time.monotonic() + budget_s

    def get_remaining_time_in_millis(self) -> int:
        return max(0, int((self._ends - time.monotonic()) * 1000))


def api_gateway_event(payload: Any, *, base64_body: bool = False,
                      raw_body: str | None = None) -> dict[str, Any]:
    """A REST API (Lambda proxy) event for POST /upload with the given body."""
    body = raw_body if raw_body is not None else json.dumps(payload)
    if base64_body:
        body = base64.b64encode(body.encode("utf-8")).decode("ascii")
    return {
        "resource": "/upload",
        "path": "/upload",
        "httpMethod": "POST",
        "headers": {"Content-Type": "application/json", "x-api-key": "test-api-key"},
        "requestContext": {"requestId": str(uuid.uuid4()), "stage": "test"},
        "body": body,
        "isBase64Encoded": base64_body,
    }


@dataclass
class Response:
    status: int
    body: dict[str, Any]
    raw: dict[str, Any]


def invoke(event: dict[str, Any]) -> Response:
    from handler.webhook import handle

    raw = handle(event, LambdaContext())
    assert raw["headers"]["Content-Type"] == "application/json"
    return Response(raw["statusCode"], json.loads(raw["body"]), raw)


# -- audiences ------------------------------------------------------------------------------------

# The audience most end-to-end tests send: its layout, the header row it gets, and its rows.
JSON_LAYOUT = json.dumps([
    {"columnName": "identity_id", "dataType": "CHARACTER"},
    {"columnName": "external_id", "dataType": "NUMERIC"},
    {"columnName": "email", "dataType": "CHARACTER"},
    {"columnName": "signup_date", "dataType": "DATE"},
]).encode()
HEADER = b"identity_id,external_id,email,signup_date\n"
# Quoted fields holding a comma, a doubled quote and a newline; UTF-8; an empty field; mixed quoting.
DATA = (
    b'0d4a-1,100001,ana@example.com,2021-03-04\n'
    b'0d4a-2,100002,"o\'neil, jr@example.com",2019-12-31\n'
    b'0d4a-3,100003,"say ""hi""\nthere",\n'
    b'0d4a-4,100004,zo\xc3\xab@example.com,2024-11-20\n'
)

# A typed audience (every CI360 data type, plus column_types overrides) for the typed formats.
TYPED_LAYOUT = json.dumps([
    {"columnName": "identity_id", "dataType": "CHARACTER"},
    {"columnName": "External ID", "dataType": "NUMERIC"},
    {"columnName": "email", "dataType": "VARCHAR"},
    {"columnName": "signup_date", "dataType": "DATE"},
    {"columnName": "last_order_dttm", "dataType": "DATETIME"},
    {"columnName": "order_total", "dataType": "NUMERIC"},
    {"columnName": "score", "dataType": "Double"},
    {"columnName": "visits", "dataType": "integer"},
    {"columnName": "opted_in", "dataType": "BOOLEAN"},
    {"columnName": "segment", "dataType": "GEOGRAPHY"},
]).encode()
TYPED_COLUMN_TYPES = json.dumps({"External ID": "bigint", "order_total": "decimal(12,2)"})
TYPED_DATA = (
    b'id-1,100001,ana@example.com,2021-03-04,2024-11-02 10:15:00,125.50,0.25,3,true,north\n'
    b'id-2,100002,"o\'neil, jr@example.com",2019-12-31,2024-10-30 23:59:59.123,0.99,-1.5,0,N,"say ""hi"""\n'
    b'id-3,100003,zo\xc3\xab@example.com,,2024-11-20T08:00:00,,,,,\n'
    b'id-4,9007199254740993,"",2000-02-29,,1234567890.12,1e3,  12,Yes,"multi\nline"\n'
)


ROW = b'0d4a1b2c-0000-4000-8000-%012d,%d,"o\'neil, %d",2024-01-01\n'


def big_audience(rows: int = 300_000) -> bytes:
    return b"".join(ROW % (i, i, i) for i in range(rows))


def job_for(stack: Stack, data: bytes, filename: str):
    data_url, metadata_url = stack.stage(data, JSON_LAYOUT)
    settings = Settings.from_env({"s3_bucket_name": stack.target, "part_size_mb": "5",
                                  "source_host_allowlist": "http://127.0.0.1:*"})
    return parse_job(webhook_payload(data_url, metadata_url, filename), settings), settings


class FlakyClient:
    """A real S3 client whose ``upload_part`` fails on one part number, and which records concurrency.

    ``together``: the first that many parts wait for each other before uploading, so they are certainly
    in flight at once (a sink that allowed fewer would leave them waiting: the barrier breaks)."""

    def __init__(self, client: Any, fail_part: int | None = None, together: int = 0) -> None:
        self._client = client
        self._fail_part = fail_part
        self._together = threading.Barrier(together) if together else None
        self._lock = threading.Lock()
        self.in_flight = 0
        self.max_in_flight = 0

    def __getattr__(self, name: str) -> Any:
        return getattr(self._client, name)

    def upload_part(self, **kwargs: Any) -> Any:
        with self._lock:
            self.in_flight += 1
            self.max_in_flight = max(self.max_in_flight, self.in_flight)
        try:
            if self._together is not None and kwargs["PartNumber"] <= self._together.parties:
                self._together.wait(timeout=30)
            if kwargs["PartNumber"] == self._fail_part:
                raise ClientError({"Error": {"Code": "InternalError", "Message": "injected"},
                                   "ResponseMetadata": {"HTTPStatusCode": 500}}, "UploadPart")
            return self._client.upload_part(**kwargs)
        finally:
            with self._lock:
                self.in_flight -= 1


def sqs_event(queue_url: str) -> dict[str, Any]:
    """The one queued job, as the SQS event Lambda builds (it stays queued: a redelivery is possible)."""
    messages = boto3.client("sqs").receive_message(QueueUrl=queue_url, MaxNumberOfMessages=10,
                                                   VisibilityTimeout=0, AttributeNames=["All"])
    found = messages.get("Messages", [])
    assert len(found) == 1, found
    (message,) = found
    return {"Records": [{"messageId": message["MessageId"], "receiptHandle": message["ReceiptHandle"],
                         "body": message["Body"], "attributes": message.get("Attributes", {}),
                         "eventSource": "aws:sqs"}]}


def get_job(occurrence_id: str) -> tuple[int, dict[str, Any]]:
    """GET /jobs/{occurrenceId}, through its handler: the status code and the record as CI360 reads it."""
    from handler import jobs as jobs_handler

    raw = jobs_handler.handle({"pathParameters": {"occurrenceId": occurrence_id}}, LambdaContext())
    return raw["statusCode"], json.loads(raw["body"])


@dataclass
class AsyncStack:
    """The asynchronous stack on moto (``async_stack`` in conftest): queue, tables, a versioned target."""

    stack: Stack
    queue_url: str
    jobs_table: str

    def queued(self) -> list[dict[str, Any]]:
        sqs = boto3.client("sqs")
        messages = sqs.receive_message(QueueUrl=self.queue_url, MaxNumberOfMessages=10,
                                       VisibilityTimeout=0, AttributeNames=["All"]).get("Messages", [])
        return messages

    def sqs_event(self) -> dict[str, Any]:
        return sqs_event(self.queue_url)

    def versions(self, key: str) -> int:
        listing = self.stack.s3.list_object_versions(Bucket=self.stack.target, Prefix=key)
        return len(listing.get("Versions", []))


# Every type a column_types override can name, on columns whose names need quoting or folding.
EVERY_TYPE = {
    "Customer ID": "bigint", "age": "int", "rank": "smallint", "flag_byte": "tinyint",
    "score": "double", "ratio": "float", "lifetime_value": "decimal(12,2)", "signup": "date",
    "last_seen": "timestamp", "vip": "boolean", "email": "string",
}


def every_type_schema() -> TypedSchema:
    layout = parse_layout(json.dumps([{"columnName": n, "dataType": "varchar"} for n in EVERY_TYPE]).encode())
    return build_schema(layout, EVERY_TYPE)


def payload_with_data(stack: Stack, data_url: str, key: str) -> dict:
    """A webhook whose data file is ``data_url`` (a fault server's, say) and whose layout is staged."""
    _, metadata_url = stack.stage(b"", JSON_LAYOUT)
    return webhook_payload(data_url, metadata_url, key)


# -- hypothesis strategies shared by the property tests (unit, and through the handler) ------------

SAMPLE = json.loads((SAMPLES / "webhook.json").read_text())
KNOWN_PARAMETERS = ("s3_filename", "s3_filename ", "csv_header", "column_types", "on_bad_value",
                    "compression", "processing_mode", "overwrite")
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


# -- secrets that must never show ------------------------------------------------------------------

SECRETS = ("deadbeefsignature", "SECRETTOKEN", "AKIA%2F", "AKIA/")
def url_secrets(payload: dict[str, Any]) -> list[str]:
    """The credential values in a payload's presigned URLs (moto's real signatures included)."""
    from urllib.parse import parse_qsl, urlsplit

    found = []
    for url in payload["presignedUrls"].values():
        for name, value in parse_qsl(urlsplit(url).query, keep_blank_values=True):
            if name in ("X-Amz-Signature", "X-Amz-Security-Token", "X-Amz-Credential") and len(value) > 4:
                found.append(value)
    return found
def assert_no_secret(*texts: str, payload: dict[str, Any] | None = None) -> None:
    everything = "\n".join(texts)
    for secret in SECRETS + tuple(url_secrets(payload) if payload else ()):
        assert secret not in everything, secret


# -- the command line ------------------------------------------------------------------------------

def write_event(tmp_path: Path, event: Any) -> str:
    path = tmp_path / "event.json"
    path.write_text(json.dumps(event))
    return str(path)

# A layout for `python -m transforms ddl`: a name that needs quoting, and the types that map to others.
DDL_METADATA = json.dumps([
    {"columnName": "Customer ID", "dataType": "NUMERIC"},
    {"columnName": "email", "dataType": "CHARACTER"},
    {"columnName": "last_seen", "dataType": "DATETIME"},
]).encode()


def run_cli(capsys: Any, *argv: str) -> tuple[int, str, str]:
    """``python -m transforms ...`` in this process: the exit code, stdout and stderr."""
    from transforms.cli.main import main

    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


# -- Glue ------------------------------------------------------------------------------------------

GLUE_LAYOUT = parse_layout(json.dumps([
    {"columnName": "Customer ID", "dataType": "NUMERIC"},
    {"columnName": "email", "dataType": "CHARACTER"},
    {"columnName": "signup", "dataType": "DATE"},
]).encode())


def glue_schema(**overrides: str) -> TypedSchema:
    """GLUE_LAYOUT's schema, with column_types overrides."""
    return build_schema(GLUE_LAYOUT, overrides)
