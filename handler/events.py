"""What API Gateway (REST, Lambda proxy) and the Lambda runtime hand a function, beyond the payload
(which ``transforms.ci360.delivery`` decodes, for the CLI's replay as well)."""

from __future__ import annotations

from typing import Any


def request_id(event: Any, context: Any) -> str | None:
    if isinstance(event, dict):
        rid = (event.get("requestContext") or {}).get("requestId")
        if rid:
            return str(rid)
    return getattr(context, "aws_request_id", None)
