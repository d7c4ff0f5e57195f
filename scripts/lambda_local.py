"""One local "container" of a Lambda function of this project, for the local state-machine runner
(scripts/fanout-local.mjs): it imports the handler once and runs invocations one at a time, as a warm
Lambda container does (module state, clients and caches carry over; a cold start is paid once).

    python scripts/lambda_local.py handler/fanout.plan --function-name NAME --timeout 900 --memory 3538

Each line on stdin is one invocation's event (JSON). Each outcome is one JSON line on file descriptor 3
(stdout and stderr stay the function's own: Powertools logs to stdout): ``{"result": ...}``, or
``{"errorType", "errorMessage"}`` as the Lambda runtime reports a failure, ``errorType`` being the
exception's class name, which is what Step Functions' Retry and Catch match. The context counts the time
left before ``--timeout`` from the start of each invocation, as Lambda's does. The runner kills a
container that overruns its timeout, as Lambda does.
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
import sys
import time
import traceback
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))


class Context:
    """The attributes of the Lambda context that the handlers (and Powertools) read."""

    def __init__(self, name: str, timeout_s: float, memory_mb: int, region: str) -> None:
        self.function_name = name
        self.function_version = "$LATEST"
        self.memory_limit_in_mb = memory_mb
        self.invoked_function_arn = f"arn:aws:lambda:{region}:123456789012:function:{name}"
        self.aws_request_id = str(uuid.uuid4())
        self.log_group_name = f"/aws/lambda/{name}"
        self.log_stream_name = "local"
        self._ends = time.monotonic() + timeout_s

    def get_remaining_time_in_millis(self) -> int:
        return max(0, int((self._ends - time.monotonic()) * 1000))


def invoke(handler: Callable[[Any, Any], Any], event: Any, context: Context) -> dict[str, Any]:
    try:
        return {"result": handler(event, context)}
    except Exception as exc:  # reported as the Lambda runtime reports it
        traceback.print_exc(file=sys.stderr)
        return {"errorType": type(exc).__name__, "errorMessage": str(exc)}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("handler", help="module path and function, as serverless.yml names it: handler/x.fn")
    parser.add_argument("--function-name", required=True)
    parser.add_argument("--timeout", type=float, default=900)
    parser.add_argument("--memory", type=int, default=1024)
    args = parser.parse_args()
    module_path, _, function = args.handler.rpartition(".")
    region = os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION") or "us-east-1"
    os.environ.setdefault("AWS_LAMBDA_FUNCTION_NAME", args.function_name)
    os.environ.setdefault("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", str(args.memory))
    handler = getattr(importlib.import_module(module_path.replace("/", ".")), function)
    with os.fdopen(3, "w") as channel:
        for line in sys.stdin:
            if not line.strip():
                continue
            context = Context(args.function_name, args.timeout, args.memory, region)
            outcome = invoke(handler, json.loads(line), context)
            channel.write(json.dumps(outcome) + "\n")
            channel.flush()
    return 0


if __name__ == "__main__":
    sys.exit(main())
