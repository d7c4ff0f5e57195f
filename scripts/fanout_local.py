"""`make fanout`: land a "large" audience through the fan-out's state machine, on this machine.

1. Packages the service with `npx serverless package` (or takes --template): the state machine's ASL is
   read from the CloudFormation template it writes.
2. Starts moto (S3, SQS, DynamoDB, Step Functions) with the job queue, the tables and the state machine
   named as serverless.yml names them; stages a generated audience as CI360 does.
3. Calls the webhook with `npx serverless invoke local -f webhook`, thresholds lowered (fanout_min_mb=1,
   fanout_range_mb): it answers 202 and starts the execution (moto records it).
4. Runs that execution's input through the packaged definition with aws-local-stepfunctions
   (scripts/fanout-local.mjs), each Task state running our handler locally, and shows the ranges, the
   assembled object and its checksum as S3 reports it.

    .venv/bin/python scripts/fanout_local.py [--mib 24] [--range-mb 4] [--to audience.csv.gz] [--template T]

`make demo` runs the same steps (``fanout_demo``) on its own stack. Presigned URLs are never printed.
"""

from __future__ import annotations

import argparse
import base64
import glob
import json
import os
import shutil
import subprocess
import sys
import time
import uuid
import zlib
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import boto3  # noqa: E402

from devstack.localstack import webhook_payload  # noqa: E402
from scripts.demo import (  # noqa: E402
    DEMO_DIR,
    LAYOUT,
    STACK_NAMES,
    Stack,
    api_gateway_event,
    audience,
    heading,
    invoke,
    local_stack,
    say,
    serverless_command,
    show_response,
)

RUNNER = ROOT / "scripts" / "fanout-local.mjs"
MACHINE = "ci360-s3-connector-dev-fanout"  # serverless.yml: custom.names.fanout_state_machine
TEMPLATE = "cloudformation-template-update-stack.json"
RUNTIME_PYTHON = "runtime_python"  # the variable scripts/bytecode.js reads


def runtime_python() -> str | None:
    """A Python 3.12 that runs (scripts/bytecode.js compiles the artifact with it; a pyenv shim named
    python3.12 on PATH may not run)."""
    candidates = [os.environ.get(RUNTIME_PYTHON, ""), shutil.which("python3.12") or "",
                  "/usr/bin/python3.12",
                  *sorted(glob.glob(os.path.expanduser("~/.pyenv/versions/3.12*/bin/python3.12")))]
    for candidate in filter(None, candidates):
        if not os.access(candidate, os.X_OK):
            continue
        probe = subprocess.run([candidate, "-c", "import sys; assert sys.version_info[:2] == (3, 12)"],
                               capture_output=True, check=False, timeout=30)
        if probe.returncode == 0:
            return candidate
    return None


def package(bucket: str) -> Path:
    """`serverless package` into .demo/package (the artifact and the templates; about a minute)."""
    out = DEMO_DIR / "package"
    command = [*serverless_command(), "package", "--stage", "dev", "--param", f"bucket={bucket}",
               "--package", str(out)]
    say(f"$ npx serverless package --stage dev --param bucket={bucket} --package {out.relative_to(ROOT)}")
    env = {**os.environ, "PATH": os.pathsep.join([str(ROOT / ".venv" / "bin"), os.environ.get("PATH", "")]),
           "SLS_TELEMETRY_DISABLED": "1"}
    for name in ("fanout_min_mb", "fanout_range_mb", "fanout_max_concurrency", "fanout_state_machine"):
        env.pop(name, None)
    python = runtime_python()
    if python:
        env[RUNTIME_PYTHON] = python
    started = time.monotonic()
    completed = subprocess.run(command, cwd=ROOT, env=env, stdin=subprocess.DEVNULL, capture_output=True,
                               text=True, check=False)
    if completed.returncode != 0:
        say((completed.stdout + completed.stderr)[-3000:])
        raise SystemExit("serverless package failed")
    say(f"packaged in {time.monotonic() - started:.0f} s: {(out / TEMPLATE).relative_to(ROOT)}")
    return out / TEMPLATE


def runner(*args: str, stdin: str | None = None, env: dict[str, str] | None = None,
           check: bool = True) -> subprocess.CompletedProcess[str]:
    completed = subprocess.run(["node", str(RUNNER), *args], input=stdin, capture_output=True, text=True,
                               cwd=ROOT, env=env, timeout=1800, check=False)
    if check and completed.returncode not in (0, 1):
        say(completed.stderr[-3000:])
        raise SystemExit(f"scripts/fanout-local.mjs {args[0]} failed (exit {completed.returncode})")
    return completed


def create_state_machine(template: Path) -> str:
    """The state machine on moto's Step Functions, with the packaged (resolved) definition: moto records
    executions and runs nothing; the local runner runs them."""
    definition = runner("definition", "--template", str(template)).stdout
    sfn = boto3.client("stepfunctions")
    for machine in sfn.list_state_machines()["stateMachines"]:
        if machine["name"] == MACHINE:
            return machine["stateMachineArn"]
    arn = sfn.create_state_machine(name=MACHINE, definition=definition,
                                   roleArn="arn:aws:iam::123456789012:role/ci360-s3-connector-dev-fanout",
                                   type="STANDARD")["stateMachineArn"]
    say(f"created the state machine {MACHINE} (Step Functions, moto: records executions, runs none)")
    return arn


def fanout_demo(stack: Stack, template: Path, key: str, data: bytes, range_mb: int) -> dict[str, Any]:
    """Webhook -> 202 and an execution -> the packaged state machine run locally -> the landed object."""
    arn = create_state_machine(template)
    data_url, metadata_url = _stage(stack, data)
    heading(f"A large audience fans out: s3_filename = {key} ({len(data) / 2**20:.1f} MiB, "
            f"ranges of {range_mb} MiB)")
    # Lowered thresholds: in production a file fans out from 20 GiB, in ranges of 1 GiB.
    settings = {"fanout_min_mb": "1", "fanout_range_mb": str(range_mb), "fanout_state_machine": arn,
                **STACK_NAMES}
    payload = webhook_payload(data_url, metadata_url, key)
    event_path = DEMO_DIR / "event-fanout.json"
    event_path.write_text(json.dumps(api_gateway_event(payload), indent=2) + "\n", encoding="utf-8")
    response = invoke(event_path, stack, extra_env=settings)
    show_response(response)
    if response.get("statusCode") != 202:
        raise SystemExit(f"expected 202 Accepted, got {response.get('statusCode')}")
    sfn = boto3.client("stepfunctions")
    execution = max(sfn.list_executions(stateMachineArn=arn, statusFilter="RUNNING")["executions"],
                    key=lambda e: e["startDate"])
    say(f"Step Functions: execution {execution['name']} started (named after the landing: a repeated "
        "webhook starts none)")
    execution_input = sfn.describe_execution(executionArn=execution["executionArn"])["input"]

    heading("The execution, run by the packaged state machine (aws-local-stepfunctions)")
    events_path = DEMO_DIR / "fanout-events.json"
    logs_path = DEMO_DIR / "fanout-functions.log"
    logs_path.unlink(missing_ok=True)
    # The steps run here as `serverless invoke local` runs a function (IS_LOCAL): so, like the demo's other
    # invokes, they may tell the outcome to the fake CI360 gateway on 127.0.0.1 over plain http.
    env = {**os.environ, **stack.env, "s3_bucket_name": stack.target, **settings, "IS_LOCAL": "true"}
    shown = template.relative_to(ROOT) if template.is_relative_to(ROOT) else template
    say(f"$ node scripts/fanout-local.mjs run --template {shown} --input - "
        f"--events {events_path.relative_to(ROOT)} --logs {logs_path.relative_to(ROOT)}")
    started = time.monotonic()
    completed = runner("run", "--template", str(template), "--input", "-", "--events", str(events_path),
                       "--logs", str(logs_path), "--param", "FanoutMaxConcurrency=4", stdin=execution_input,
                       env=env)
    elapsed = time.monotonic() - started
    for line in completed.stderr.splitlines():
        say(f"  {line}")
    (run,) = json.loads(events_path.read_text())["executions"]
    for step in run["invocations"]:
        unit = "batch" if step["state"] == "CopyBatch" else "range"
        where = f" {unit} {step['index']}" if step["index"] is not None else ""
        outcome = "ok" if step["ok"] else step["errorType"]
        say(f"  {step['state']:<15}{where:<10} {step['ms'] / 1000:6.2f} s  {outcome}")
    if run["failed"]:
        raise SystemExit(f"the execution failed: {run['failed']} (see {logs_path.relative_to(ROOT)})")
    result = run["output"]
    say(f"execution succeeded in {elapsed:.1f} s: {result['fanout']['ranges']} ranges, "
        f"{result['fanout']['parts']} parts copied in {result['fanout']['copyBatches']} copy batches")
    show_assembled(stack, result, data)
    return result


def _stage(stack: Stack, data: bytes) -> tuple[str, str]:
    from devstack.localstack import stage

    return stage(stack.staging_s3, stack.staging, data, json.dumps(LAYOUT).encode())


def show_assembled(stack: Stack, result: dict[str, Any], data: bytes) -> None:
    """Each landed object with the CRC32 S3 reports for it, checked against the bytes read back."""
    for item in result["objects"]:
        head = stack.target_s3.head_object(Bucket=stack.target, Key=item["key"], ChecksumMode="ENABLED")
        body = stack.target_s3.get_object(Bucket=stack.target, Key=item["key"])["Body"].read()
        ours = base64.b64encode(zlib.crc32(body).to_bytes(4, "big")).decode()
        reported = head.get("ChecksumCRC32", "(none: the store returned no checksum)")
        say(f"landed: s3://{stack.target}/{item['key']}")
        say(f"  {head['ContentLength']:,} bytes; CRC32 S3 reports {reported} "
            f"({head.get('ChecksumType', '?')}), the result says {item['checksum']['value']}, "
            f"the bytes read back {ours}")
        if item["checksum"]["value"] != ours:
            raise SystemExit("the object's CRC32 differs from the result's")
    lines = data.count(b"\n")
    say(f"rows: {result['rows']:,} (the staged audience has {lines:,} lines)")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--mib", type=float, default=24, help="size of the generated audience (MiB)")
    parser.add_argument("--range-mb", type=int, default=4, help="fanout_range_mb for this run")
    parser.add_argument("--to", default="audience.csv.gz", help="the target's file name (its extension "
                        "picks the format)")
    parser.add_argument("--template", type=Path,
                        help="a template `serverless package` wrote (skips packaging)")
    args = parser.parse_args()
    heading("Local stack")
    stack = local_stack()
    try:
        DEMO_DIR.mkdir(exist_ok=True)
        template = args.template.resolve() if args.template else package(stack.target)
        rows = max(1000, int(args.mib * 2**20 / 110))  # the generated rows are ~110 bytes
        data = audience(rows)
        fanout_demo(stack, template, f"ci360-fanout/{uuid.uuid4().hex[:8]}/{args.to}", data, args.range_mb)
        heading("Done")
        return 0
    finally:
        stack.stop()


if __name__ == "__main__":
    sys.exit(main())
