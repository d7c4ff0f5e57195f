"""One Lambda invocation in a process of its own, under a function name, as a deployment runs it.

The webhook and the worker are two functions: different AWS_LAMBDA_FUNCTION_NAME values, different
processes. Tests that run them at the same time start each here:
    python -m tests.support.lambda_process <webhook|worker> <function name>   (the event as JSON on stdin)
and read the handler's return value as JSON on stdout.
"""

from __future__ import annotations

import json
import os
import sys


def main() -> None:
    function, name = sys.argv[1], sys.argv[2]
    os.environ["AWS_LAMBDA_FUNCTION_NAME"] = name
    from tests.support.helpers import LambdaContext

    context = LambdaContext()
    context.function_name = name
    context.invoked_function_arn = f"arn:aws:lambda:us-east-1:123456789012:function:{name}"
    event = json.load(sys.stdin)
    if function == "webhook":
        from handler.webhook import handle
    else:
        from handler.worker import handle
    result = handle(event, context)
    sys.stdout.write("\n" + json.dumps(result) + "\n")


if __name__ == "__main__":
    main()
