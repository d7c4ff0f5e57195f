"""`npx serverless invoke local -f webhook` as a developer's first try: only s3_bucket_name set.

The real command (osls, the project's serverless.yml, the handler in a `python3` child process)
against moto's server, reached through the standard AWS variables only. The queue and tables the
stack would have are not named, so a local invoke lands the file without them; named explicitly,
they are used.
"""

from __future__ import annotations

import json
import os
import subprocess
import uuid
from pathlib import Path
from typing import Any

import boto3

from devstack.localstack import MotoServer, webhook_payload
from tests.support.helpers import DATA, HEADER, JSON_LAYOUT, ROOT, Stack, api_gateway_event
from tests.support.packaging import serverless_command


def invoke_local(event: dict[str, Any], tmp_path: Path, moto_server: MotoServer,
                 **settings: str) -> dict[str, Any]:
    """Run the command in an environment holding nothing but what a developer would set."""
    event_path = tmp_path / "event.json"
    event_path.write_text(json.dumps(event), encoding="utf-8")
    env = {"PATH": os.pathsep.join([str(ROOT / ".venv" / "bin"), os.environ.get("PATH", "")]),
           "HOME": os.environ.get("HOME", str(tmp_path)), **moto_server.environ(),
           # moto's presigned URLs are http://127.0.0.1:<port>: the one local origin to allow.
           "source_host_allowlist": "http://127.0.0.1:*", **settings}
    command = [*serverless_command(), "invoke", "local", "-f", "webhook", "-p", str(event_path)]
    completed = subprocess.run(command, cwd=ROOT, env=env, stdin=subprocess.DEVNULL, capture_output=True,
                               text=True, timeout=300, check=False)
    assert completed.returncode == 0, (completed.stdout + completed.stderr)[-4000:]
    return _response(completed.stdout)


def _response(stdout: str) -> dict[str, Any]:
    """The handler's return value: osls prints it last, as indented JSON."""
    start = stdout.rfind("{\n")
    while start != -1:
        try:
            value, _ = json.JSONDecoder().raw_decode(stdout[start:])
            if isinstance(value, dict) and "statusCode" in value:
                return value
        except json.JSONDecodeError:
            pass
        start = stdout.rfind("{\n", 0, start)
    raise AssertionError(f"no response in the output:\n{stdout[-4000:]}")


def test_first_invoke_local_with_only_the_bucket_lands_the_file(stack: Stack, moto_server: MotoServer,
                                                                 tmp_path: Path) -> None:
    data_url, metadata_url = stack.stage(DATA, JSON_LAYOUT)
    event = api_gateway_event(webhook_payload(data_url, metadata_url, "first/try.csv"))
    response = invoke_local(event, tmp_path, moto_server, s3_bucket_name=stack.target)
    body = json.loads(response["body"])
    assert response["statusCode"] == 200, body
    assert body["key"] == "first/try.csv" and body["rows"] == 4
    assert stack.landed("first/try.csv") == HEADER + DATA
    assert stack.pending_uploads() == []


def test_invoke_local_uses_the_queue_and_tables_when_named(stack: Stack, moto_server: MotoServer,
                                                           tmp_path: Path) -> None:
    suffix = uuid.uuid4().hex[:8]
    dynamodb = boto3.client("dynamodb")
    for table, key in ((f"jobs-{suffix}", "occurrence_id"), (f"idempotency-{suffix}", "id")):
        dynamodb.create_table(TableName=table, BillingMode="PAY_PER_REQUEST",
                              AttributeDefinitions=[{"AttributeName": key, "AttributeType": "S"}],
                              KeySchema=[{"AttributeName": key, "KeyType": "HASH"}])
    data_url, metadata_url = stack.stage(DATA, JSON_LAYOUT)
    payload = webhook_payload(data_url, metadata_url, "named.csv")
    response = invoke_local(api_gateway_event(payload), tmp_path, moto_server, s3_bucket_name=stack.target,
                            jobs_table=f"jobs-{suffix}", idempotency_table=f"idempotency-{suffix}")
    assert response["statusCode"] == 200, response["body"]
    assert stack.landed("named.csv") == HEADER + DATA
    record = dynamodb.get_item(TableName=f"jobs-{suffix}",
                               Key={"occurrence_id": {"S": payload["task"]["occurrenceId"]}})["Item"]
    assert record["status"] == {"S": "succeeded"}
    assert len(dynamodb.scan(TableName=f"idempotency-{suffix}")["Items"]) == 1
