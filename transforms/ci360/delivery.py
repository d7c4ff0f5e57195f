"""A webhook call as it was delivered: API Gateway's proxy event (REST, Lambda proxy integration), or
the bare CI360 payload (``invoke local``, a replay). The webhook function and the CLI's ``replay`` read
recorded deliveries the same way.
"""

from __future__ import annotations

import base64
import binascii
import json
from typing import Any

from transforms.errors import ValidationError


def webhook_payload(event: Any) -> Any:
    """The decoded JSON body; a bare CI360 payload (as in ``invoke local`` or a replay) is accepted too."""
    if not isinstance(event, dict):
        raise ValidationError("the event is not a JSON object")
    if "body" not in event:
        if "presignedUrls" in event or "task" in event:
            return event
        raise ValidationError("the request has no body", [{"field": "body"}])
    body = event["body"]
    if body is None or body == "":
        raise ValidationError("the request body is empty", [{"field": "body"}])
    if isinstance(body, dict):
        return body
    if not isinstance(body, str):
        raise ValidationError("the request body is not text", [{"field": "body"}])
    if event.get("isBase64Encoded"):
        try:
            body = base64.b64decode(body, validate=True).decode("utf-8")
        except (binascii.Error, ValueError):  # not base64, not ASCII, or not UTF-8 underneath
            raise ValidationError("the request body is not valid base64-encoded UTF-8",
                                  [{"field": "body"}]) from None
    try:
        return json.loads(body)
    except json.JSONDecodeError as exc:
        raise ValidationError(f"the request body is not valid JSON ({exc.msg} at line {exc.lineno}, "
                              f"column {exc.colno})", [{"field": "body"}]) from None
    except RecursionError:
        raise ValidationError("the request body nests JSON too deeply", [{"field": "body"}]) from None
