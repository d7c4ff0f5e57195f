"""`make demo`: the whole CI360 -> S3 path on this machine, through `serverless invoke local`.

1. Starts moto's S3 server on 127.0.0.1 (or, with DEMO_REAL_AWS=1, uses two real buckets).
2. Stages a generated audience the way CI360 does: a data file (CSV, no header) and a metadata file
   (JSON layout) in a "CI360 staging" bucket, with real presigned GET URLs.
3. Writes CI360's webhook as an API Gateway (REST, Lambda proxy) event under .demo/.
4. Runs `npx serverless invoke local -f webhook -p .demo/<event>.json` twice, for a .csv and a .csv.gz
   target, and shows what landed in the target bucket.
5. For each landing, shows the outcome event CI360 received (a fake CI360 external gateway on 127.0.0.1
   that verifies the JWT, devstack/ci360_gateway.py) and the "Audience landed" event an EventBridge rule
   on moto routed to a queue.

Real AWS instead of moto (your own credentials, the usual AWS_PROFILE / AWS_* variables):
    DEMO_REAL_AWS=1 DEMO_STAGING_BUCKET=my-staging DEMO_TARGET_BUCKET=my-target make demo
The staged files are deleted afterwards; the two result objects stay under ci360-demo/ in the target.
Presigned URLs are never printed: they carry credentials.
"""

from __future__ import annotations

import csv
import gzip
import io
import json
import os
import random
import shutil
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from devstack.ci360_gateway import FakeCI360Gateway  # noqa: E402
from devstack.localstack import (  # noqa: E402
    MotoServer,
    create_job_stack,
    route_outcome_events,
    routed_events,
    s3_client,
    webhook_payload,
)
from transforms.redact import scrub  # noqa: E402

DEMO_DIR = ROOT / ".demo"
ROWS = 5000
LAYOUT = [  # the column layout of ../shared/ci360/samples/metadata.json
    {"columnName": "identity_id", "dataType": "CHARACTER"},
    {"columnName": "external_id", "dataType": "NUMERIC"},
    {"columnName": "email", "dataType": "CHARACTER"},
    {"columnName": "signup_date", "dataType": "DATE"},
    {"columnName": "last_order_dttm", "dataType": "DATETIME"},
    {"columnName": "order_total", "dataType": "NUMERIC"},
]
NAMES = ["ana", "bruno", "zoë", "josé", "søren", "łukasz", "małgorzata", "renée", "yūki", "chloé", "nguyễn",
         "müller", "olga", "dimitris", "aoife"]
DOMAINS = ["example.com", "example.org", "exämple.de", "example.co.jp"]


def say(text: str = "") -> None:
    print(text, flush=True)


def heading(text: str) -> None:
    say()
    say(f"== {text}")


def truthy(value: str | None) -> bool:
    return (value or "").strip().lower() in {"1", "true", "yes", "on"}


# ---------------------------------------------------------------------------------------------------
# The audience


def audience(rows: int = ROWS, seed: int = 360) -> bytes:
    """CI360's data file: CSV, LF line endings, no header, RFC 4180 quoting where a field needs it.

    Deterministic; includes empty fields, UTF-8 names, a field with a comma and one with quotes.
    """
    rng = random.Random(seed)
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    epoch = date(2018, 1, 1)
    for i in range(rows):
        identity = uuid.UUID(int=rng.getrandbits(128), version=4)
        name = rng.choice(NAMES)
        email = f"{name}.{i}@{rng.choice(DOMAINS)}"
        if i % 97 == 1:
            email = f"o'neil, jr.{i}@example.com"  # a comma: the field is quoted
        elif i % 131 == 2:
            email = f'"{name} the admin".{i}@example.com'  # quotes: doubled inside a quoted field
        signup = epoch + timedelta(days=rng.randrange(2500))
        last_order = datetime(2024, 1, 1) + timedelta(seconds=rng.randrange(365 * 86400))
        total = f"{rng.randrange(1, 100_000) / 100:.2f}"
        writer.writerow([
            str(identity),
            100_000 + i,
            email,
            "" if i % 23 == 0 else signup.isoformat(),
            "" if i % 17 == 0 else last_order.strftime("%Y-%m-%d %H:%M:%S"),
            "" if i % 11 == 0 else total,
        ])
    return buffer.getvalue().encode("utf-8")


def api_gateway_event(payload: dict[str, Any], stage_name: str = "dev") -> dict[str, Any]:
    """What API Gateway (REST, Lambda proxy integration) hands the function for CI360's POST /upload."""
    return {
        "resource": "/upload",
        "path": "/upload",
        "httpMethod": "POST",
        "headers": {"Content-Type": "application/json", "x-api-key": "demo-api-key",
                    "User-Agent": "CI360 demo"},
        "multiValueHeaders": {},
        "queryStringParameters": None,
        "multiValueQueryStringParameters": None,
        "pathParameters": None,
        "stageVariables": None,
        "requestContext": {
            "resourcePath": "/upload",
            "httpMethod": "POST",
            "path": f"/{stage_name}/upload",
            "stage": stage_name,
            "requestId": str(uuid.uuid4()),
            "identity": {"apiKey": "demo-api-key", "sourceIp": "127.0.0.1"},
        },
        "body": json.dumps(payload),
        "isBase64Encoded": False,
    }


# ---------------------------------------------------------------------------------------------------
# Where the buckets live: moto on 127.0.0.1, or real AWS


@dataclass
class Stack:
    staging_s3: Any
    target_s3: Any
    staging: str
    target: str
    env: dict[str, str]  # what the invoked function needs on top of the inherited environment
    region: str
    real: bool
    server: MotoServer | None = None
    gateway: FakeCI360Gateway | None = None  # CI360's external gateway, faked (the local stack only)
    outcomes_queue: str | None = None  # where an EventBridge rule sends the connector's events

    def stop(self) -> None:
        if self.gateway is not None:
            self.gateway.stop()
        if self.server is not None:
            self.server.stop()
            say(f"moto server stopped (pid {self.server.process.pid})")


def local_stack() -> Stack:
    server = MotoServer.start()
    try:
        say(f"moto S3 server on {server.endpoint} (pid {server.process.pid})")
        # moto's presigned URLs are http://127.0.0.1:<port>: the one local origin the function may fetch.
        env = {**server.environ(), "source_host_allowlist": "http://127.0.0.1:*"}
        os.environ.update(env)  # our own boto3 clients, and the function's, both go to moto
        for name in ("AWS_PROFILE", "AWS_DEFAULT_PROFILE"):
            os.environ.pop(name, None)
        s3 = s3_client()
        staging, target = "ci360-staging-demo", "ci360-target-demo"
        for bucket in (staging, target):
            s3.create_bucket(Bucket=bucket)
        say(f"created buckets s3://{staging} (CI360 staging) and s3://{target} (target)")
        create_stack_resources()
        gateway, outcomes_queue, outcome_env = outcome_channels()
        return Stack(s3, s3, staging, target, {**env, **outcome_env}, env["AWS_DEFAULT_REGION"], real=False,
                     server=server, gateway=gateway, outcomes_queue=outcomes_queue)
    except BaseException:
        server.stop()
        raise


# What serverless.yml names the job queue and the two tables (custom.names, stage dev): created on moto
# under the same names as a deployed stack's. A local invoke uses them only when they are named in its
# environment (the asynchronous part below does); the first invocations need nothing but the bucket.
STACK_NAMES = {"jobs_queue": "ci360-s3-connector-dev-jobs", "jobs_table": "ci360-s3-connector-dev-jobs",
               "idempotency_table": "ci360-s3-connector-dev-idempotency"}


DEMO_TENANT = "0dh01d000a00013a3a2cac00"  # the tenant of CONTRACT.md's sample
DEMO_BUS = "ci360-demo-bus"


def outcome_channels() -> tuple[FakeCI360Gateway, str, dict[str, str]]:
    """CI360's side of the outcome (a fake external gateway with a client secret made up for this run) and
    the data team's (an EventBridge bus on moto whose rule sends the connector's events to a queue)."""
    secret = uuid.uuid4().hex + uuid.uuid4().hex[:12]
    gateway = FakeCI360Gateway(DEMO_TENANT, secret)
    queue_url = route_outcome_events(DEMO_BUS)
    say(f"fake CI360 external gateway on {gateway.url} (verifies the JWT; tenant {DEMO_TENANT})")
    say(f"EventBridge bus {DEMO_BUS} on moto, with a rule sending source ci360.s3-connector to a queue")
    # What a local invoke is given: the access point's address, tenant id and client secret (the secret
    # itself only because this is a local invoke; deployed, ci360_client_secret_arn names it).
    env = {"ci360_events_url": gateway.url, "ci360_tenant_id": DEMO_TENANT, "ci360_client_secret": secret,
           "event_bus_name": DEMO_BUS}
    return gateway, queue_url, env


def show_outcome(stack: Stack, told_before: int) -> None:
    """What CI360 and the data team's rule heard of the last outcome."""
    if stack.gateway is None or stack.outcomes_queue is None:
        return
    new = stack.gateway.requests[told_before:]
    if not new:
        raise SystemExit("CI360 received no outcome event")
    for request in new:
        say(f"CI360 received: HTTP {request.status} ({request.reason}); JWT claims {request.claims}")
        for name, value in (request.event or {}).items():
            say(f"    {name:<22} {value}")
    for event in routed_events(stack.outcomes_queue):
        detail = event["detail"]
        say(f"EventBridge rule -> queue: {event['detail-type']!r} from {event['source']}: "
            f"key {detail.get('key')}, format {detail.get('format')}, rows {detail.get('rows')}, "
            f"checksum {(detail.get('checksum') or {}).get('value', '-')}")


def told(stack: Stack) -> int:
    return len(stack.gateway.requests) if stack.gateway is not None else 0


def create_stack_resources() -> None:
    create_job_stack(STACK_NAMES["jobs_queue"], STACK_NAMES["jobs_table"], STACK_NAMES["idempotency_table"])
    say(f"created the job queue {STACK_NAMES['jobs_queue']} (SQS) and the tables "
        f"{STACK_NAMES['jobs_table']}, {STACK_NAMES['idempotency_table']} (DynamoDB)")


def bucket_region(s3: Any, bucket: str) -> str:
    from transforms.aws import SDK_ERRORS

    try:
        response = s3.head_bucket(Bucket=bucket)
    except SDK_ERRORS as error:
        sys.exit(f"cannot use s3://{bucket} with your AWS credentials: {scrub(str(error))}")
    headers = response.get("ResponseMetadata", {}).get("HTTPHeaders", {})
    return response.get("BucketRegion") or headers.get("x-amz-bucket-region") or "us-east-1"


def real_stack() -> Stack:
    staging = os.environ.get("DEMO_STAGING_BUCKET", "").strip()
    target = os.environ.get("DEMO_TARGET_BUCKET", "").strip()
    if not staging or not target:
        sys.exit("DEMO_REAL_AWS=1 needs DEMO_STAGING_BUCKET and DEMO_TARGET_BUCKET (two existing buckets)")
    probe = s3_client()
    staging_region, target_region = bucket_region(probe, staging), bucket_region(probe, target)
    # Presigned URLs must be signed for the staging bucket's own region.
    staging_s3 = _regional_client(staging_region)
    target_s3 = _regional_client(target_region)
    say(f"real AWS: staging s3://{staging} ({staging_region}), target s3://{target} ({target_region})")
    # A local invoke uses no queue or table unless named (README): synchronous, without job records,
    # even if your shell names some.
    off = {"jobs_queue": "", "jobs_table": "", "idempotency_table": ""}
    return Stack(staging_s3, target_s3, staging, target, off, target_region, real=True)


def _regional_client(region: str) -> Any:
    import boto3
    from botocore.config import Config

    return boto3.client("s3", region_name=region, config=Config(signature_version="s3v4"))


# ---------------------------------------------------------------------------------------------------
# Staging, invoking, showing


def stage_audience(stack: Stack, data: bytes, metadata: bytes) -> tuple[str, str, list[str]]:
    """Stage as CI360 does; return presigned GET URLs (data, metadata) and the staged keys."""
    prefix = f"exports/1019/{uuid.uuid4()}"
    keys = [f"{prefix}_data", f"{prefix}_metadata"]
    for key, body in zip(keys, (data, metadata), strict=True):
        stack.staging_s3.put_object(Bucket=stack.staging, Key=key, Body=body)
    ttl = 900 if stack.real else 3600
    urls = [stack.staging_s3.generate_presigned_url("get_object", ExpiresIn=ttl,
                                                    Params={"Bucket": stack.staging, "Key": key})
            for key in keys]
    say(f"staged s3://{stack.staging}/{keys[0]}  ({len(data):,} bytes, {ROWS:,} rows, no header)")
    say(f"staged s3://{stack.staging}/{keys[1]}  ({len(metadata):,} bytes, JSON layout)")
    say(f"presigned GET URLs made (valid {ttl} s; not shown: they carry credentials)")
    return urls[0], urls[1], keys


def serverless_command() -> list[str]:
    npx = shutil.which("npx")
    if npx is None:
        sys.exit("npx (Node.js) is not on PATH; `make demo` installs the Node packages with npm ci")
    return [npx, "--no", "serverless"]


def invoke(event_path: Path, stack: Stack, function: str = "webhook",
           extra_env: dict[str, str] | None = None) -> dict[str, Any]:
    """Run the function through osls' `invoke local`, as a user would; return its response."""
    relative = event_path.relative_to(ROOT)
    command = [*serverless_command(), "invoke", "local", "-f", function, "-p", str(relative)]
    if stack.real:
        command += ["--region", stack.region]
    env = {**os.environ, **stack.env, "s3_bucket_name": stack.target, **(extra_env or {})}
    # invoke local spawns `python3` from PATH: the project's virtualenv first.
    env["PATH"] = os.pathsep.join([str(ROOT / ".venv" / "bin"), env.get("PATH", "")])
    env.setdefault("LOG_LEVEL", "INFO")
    settings = " ".join(f"{k}={v}" for k, v in (extra_env or {}).items())
    say(f"$ s3_bucket_name={stack.target} {settings + ' ' if settings else ''}"
        f"npx serverless invoke local -f {function} -p {relative}"
        + (f" --region {stack.region}" if stack.real else ""))
    started = time.monotonic()
    completed = subprocess.run(command, cwd=ROOT, env=env, stdin=subprocess.DEVNULL,
                               capture_output=True, text=True, check=False)
    elapsed = time.monotonic() - started
    output = scrub(completed.stdout + completed.stderr)
    response = _response_in(completed.stdout)
    if response is None and function == "worker" and completed.returncode == 0:
        response = {}  # the worker returns nothing: a failure would have been raised (SQS retries it)
    if completed.returncode != 0 or response is None:
        say(output)
        raise SystemExit(f"invoke local failed (exit code {completed.returncode})")
    _show_logs(completed.stdout)
    say(f"invoke local took {elapsed:.1f} s (osls start-up included)")
    return response


def _response_in(stdout: str) -> dict[str, Any] | None:
    """The handler's return value: invoke.py writes it last, as indented JSON."""
    start = stdout.rfind("{\n")
    while start != -1:
        try:
            value, _ = json.JSONDecoder().raw_decode(stdout[start:])
        except json.JSONDecodeError:
            start = stdout.rfind("{\n", 0, start)
            continue
        if isinstance(value, dict) and "statusCode" in value:
            return value
        start = stdout.rfind("{\n", 0, start)
    return None


def _show_logs(stdout: str) -> None:
    """The function's structured (Powertools) log lines, one short line each."""
    for line in stdout.splitlines():
        if not line.startswith('{"'):
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError:
            continue
        if not isinstance(record, dict) or "message" not in record:
            continue
        keep = {k: record[k] for k in ("key", "format", "rows", "bytes_written", "error_code")
                if k in record}
        extra = " ".join(f"{k}={v}" for k, v in keep.items())
        say(scrub(f"  log {record.get('level', ''):<7} {record['message']}  {extra}".rstrip()))


def show_response(response: dict[str, Any]) -> dict[str, Any]:
    body = response.get("body") or "{}"
    try:
        parsed = json.loads(body)
    except json.JSONDecodeError:
        parsed = {"raw": body}
    if isinstance(parsed, dict) and "url" in parsed:
        parsed["url"] = scrub(str(parsed["url"]))
    say(f"response: HTTP {response.get('statusCode')}")
    for line in json.dumps(parsed, indent=2, ensure_ascii=False).splitlines():
        say(f"  {line}")
    return parsed if isinstance(parsed, dict) else {}


def show_landed(stack: Stack, key: str, expected: bytes) -> None:
    head = stack.target_s3.head_object(Bucket=stack.target, Key=key)
    say(f"landed: s3://{stack.target}/{key}")
    say(f"  size {head['ContentLength']:,} bytes, Content-Type {head.get('ContentType', '?')}")
    raw = stack.target_s3.get_object(Bucket=stack.target, Key=key)["Body"].read()
    content = gzip.decompress(raw) if key.endswith(".gz") else raw
    if key.endswith(".gz"):
        say(f"  gzip: {len(content):,} bytes decompressed ({len(raw) / max(len(content), 1):.0%} of that)")
    say("  first rows:")
    for line in content.decode("utf-8").splitlines()[:5]:
        say(f"    {line}")
    same = content == expected
    say("  check: " + ("header row + the staged bytes, unchanged" if same else "differs from the staging"))
    if not same:
        raise SystemExit("the landed object is not the header row plus the staged data")


def typed_demo(stack: Stack, data_url: str, metadata_url: str, key: str) -> None:
    """A .parquet target: typed by the layout, NUMERIC made exact where the task says so."""
    heading(f"A typed target for Athena: s3_filename = {key}")
    column_types = json.dumps({"external_id": "bigint", "order_total": "decimal(12,2)"})
    payload = webhook_payload(data_url, metadata_url, key, column_types=column_types)
    event_path = DEMO_DIR / "event-parquet.json"
    event_path.write_text(json.dumps(api_gateway_event(payload), indent=2) + "\n", encoding="utf-8")
    say(f"send parameter column_types = {column_types}")
    before = told(stack)
    response = invoke(event_path, stack)
    body = show_response(response)
    if response.get("statusCode") != 200:
        raise SystemExit(f"the function answered {response.get('statusCode')}")
    show_outcome(stack, before)
    import pyarrow.parquet as pq

    raw = stack.target_s3.get_object(Bucket=stack.target, Key=key)["Body"].read()
    table = pq.read_table(io.BytesIO(raw))
    say(f"landed: s3://{stack.target}/{key}  ({len(raw):,} bytes, {table.num_rows:,} rows)")
    for field in table.schema:
        say(f"  {field.name:<16} {field.type}")
    say("  first row: " + json.dumps(table.slice(0, 1).to_pylist()[0], default=str, ensure_ascii=False))
    if table.num_rows != body.get("rows"):
        raise SystemExit("the Parquet row count differs from the response")


def async_demo(stack: Stack, data_url: str, metadata_url: str, key: str, data: bytes) -> None:
    """A file too large for the gateway's 29 s: 202 at once, then the worker lands it from the queue."""
    import boto3

    heading(f"A large audience: queued, answered 202, landed by the worker: s3_filename = {key}")
    sqs = boto3.client("sqs")
    queue_url = sqs.get_queue_url(QueueName=STACK_NAMES["jobs_queue"])["QueueUrl"]
    # sync_max_mb=0 makes this small demo file count as large; in production the default is 100 MB.
    # A local invoke uses a queue and tables only when they are named: here, the ones made on moto.
    env = {"sync_max_mb": "0", **STACK_NAMES}
    payload = webhook_payload(data_url, metadata_url, key)
    event_path = DEMO_DIR / "event-large.json"
    event_path.write_text(json.dumps(api_gateway_event(payload), indent=2) + "\n", encoding="utf-8")
    response = invoke(event_path, stack, extra_env=env)
    show_response(response)
    if response.get("statusCode") != 202:
        raise SystemExit(f"expected 202 Accepted, got {response.get('statusCode')}")
    messages = sqs.receive_message(QueueUrl=queue_url, AttributeNames=["All"]).get("Messages", [])
    if len(messages) != 1:
        raise SystemExit(f"expected one queued job, found {len(messages)}")
    message = messages[0]
    sqs_event = {"Records": [{"messageId": message["MessageId"], "receiptHandle": message["ReceiptHandle"],
                              "body": message["Body"], "attributes": message.get("Attributes", {}),
                              "eventSource": "aws:sqs", "eventSourceARN": "arn:aws:sqs:demo"}]}
    worker_event = DEMO_DIR / "sqs-event.json"
    worker_event.write_text(json.dumps(sqs_event, indent=2) + "\n", encoding="utf-8")
    say(f"the queue holds the job; wrote {worker_event.relative_to(ROOT)} (the SQS event Lambda would pass)")
    say("(202 is not an outcome: CI360 hears of this job when the worker lands it)")
    before = told(stack)
    invoke(worker_event, stack, "worker", extra_env=STACK_NAMES)
    say("worker: done (it returns nothing; a failure would be raised and SQS would deliver the job again)")
    show_outcome(stack, before)
    sqs.delete_message(QueueUrl=queue_url, ReceiptHandle=message["ReceiptHandle"])
    show_landed(stack, key, header_row() + data)
    jobs_event = DEMO_DIR / "jobs-event.json"
    jobs_event.write_text(json.dumps({"httpMethod": "GET", "path": f"/jobs/{payload['task']['occurrenceId']}",
                                      "pathParameters": {"occurrenceId": payload["task"]["occurrenceId"]}},
                                     indent=2) + "\n", encoding="utf-8")
    heading("GET /jobs/{occurrenceId}: the job record")
    record = show_response(invoke(jobs_event, stack, "jobs", extra_env=STACK_NAMES))
    if record.get("status") != "succeeded":
        raise SystemExit(f"the job record says {record.get('status')}")


def header_row() -> bytes:
    return (",".join(column["columnName"] for column in LAYOUT) + "\n").encode()


def main() -> int:
    real = truthy(os.environ.get("DEMO_REAL_AWS"))
    heading("Local stack" if not real else "Real AWS")
    stack = real_stack() if real else local_stack()
    staged_keys: list[str] = []
    try:
        heading("CI360 stages an audience")
        data = audience()
        metadata = json.dumps(LAYOUT).encode()
        data_url, metadata_url, staged_keys = stage_audience(stack, data, metadata)

        DEMO_DIR.mkdir(exist_ok=True)
        run_id = uuid.uuid4().hex[:8]
        targets = [("event.json", f"ci360-demo/{run_id}/audience.csv"),
                   ("event-gz.json", f"ci360-demo/{run_id}/audience.csv.gz")]
        for event_name, key in targets:
            heading(f"CI360 calls the webhook: s3_filename = {key}")
            payload = webhook_payload(data_url, metadata_url, key)
            event_path = DEMO_DIR / event_name
            event_path.write_text(json.dumps(api_gateway_event(payload), indent=2) + "\n", encoding="utf-8")
            say(f"wrote {event_path.relative_to(ROOT)} (API Gateway proxy event; body = the webhook JSON)")
            before = told(stack)
            response = invoke(event_path, stack)
            body = show_response(response)
            if response.get("statusCode") != 200:
                raise SystemExit(f"the function answered {response.get('statusCode')}: "
                                 f"{body.get('error', {}).get('code', '?')}")
            show_landed(stack, key, header_row() + data)
            show_outcome(stack, before)
        typed_demo(stack, data_url, metadata_url, f"ci360-demo/{run_id}/audience.parquet")
        if stack.real:
            say("\n(the asynchronous path needs the deployed queue and tables: see README, 'Deploy')")
        else:
            async_demo(stack, data_url, metadata_url, f"ci360-demo/{run_id}/large/audience.csv.gz", data)
            from scripts.fanout_local import fanout_demo, package

            heading("Past one function: the fan-out's state machine (README, 'Fan-out, locally')")
            before = len(stack.gateway.requests) if stack.gateway is not None else 0
            fanout_demo(stack, package(stack.target), f"ci360-demo/{run_id}/fanout/audience.csv.gz",
                        audience(120_000), range_mb=2)
            show_outcome(stack, before)  # told by the fan-out's finalizer
        heading("Done")
        say(f"the objects are in s3://{stack.target}/ci360-demo/{run_id}/"
            + ("" if stack.real else " (on the moto server, gone when it stops)"))
        return 0
    finally:
        if stack.real:
            for key in staged_keys:
                stack.staging_s3.delete_object(Bucket=stack.staging, Key=key)
            if staged_keys:
                say(f"deleted the staged files from s3://{stack.staging}")
        stack.stop()


if __name__ == "__main__":
    sys.exit(main())
