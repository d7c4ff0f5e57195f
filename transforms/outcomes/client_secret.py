"""The CI360 access point's client secret: read once per container, never logged.

Deployed, it comes from AWS Secrets Manager (``ci360_client_secret_arn``; the role may read exactly that
secret); on a local invoke it may be given as ``ci360_client_secret``. The value is registered with the
log scrubbing (``transforms.redact``), plain and base64-encoded (the JWT's key), before anything else
can see it.
"""

from __future__ import annotations

import base64
import json
import threading
from collections.abc import Callable
from typing import Any

from transforms.aws import SDK_ERRORS, aws_failure
from transforms.redact import register_secret

# A JSON secret (as the console's "key/value" form stores one) holds the client secret under one of these.
JSON_KEYS = ("client_secret", "clientSecret", "secret")


class SecretUnavailable(Exception):
    """The secret could not be read; the message names why (an AWS error code), never a value."""


class ClientSecret:
    def __init__(self, arn: str | None, value: str | None = None,
                 secretsmanager: Callable[[], Any] | None = None) -> None:
        self._arn = arn
        self._value = value
        self._secretsmanager = secretsmanager
        self._lock = threading.Lock()
        if value:
            _register(value)

    def __repr__(self) -> str:
        return f"ClientSecret(arn={self._arn!r})"

    def value(self) -> str:
        """The secret, read on first use (a failed read is tried again next time)."""
        with self._lock:
            if self._value is None:
                self._value = self._read()
                _register(self._value)
            return self._value

    def _read(self) -> str:
        if not self._arn or self._secretsmanager is None:
            raise SecretUnavailable("no client secret is configured")
        try:
            answer = self._secretsmanager().get_secret_value(SecretId=self._arn)
        except SDK_ERRORS as exc:
            code = aws_failure(exc).code
            raise SecretUnavailable(f"the client secret could not be read ({code})") from None
        text = answer.get("SecretString")
        if text is None and answer.get("SecretBinary") is not None:
            text = bytes(answer["SecretBinary"]).decode("utf-8", "replace")
        return _from_secret_text(text or "")


def _from_secret_text(text: str) -> str:
    """The secret as stored: the plain value, or a JSON object holding it under one of JSON_KEYS."""
    stripped = text.strip()
    if stripped.startswith("{"):
        try:
            document = json.loads(stripped)
        except ValueError:
            document = None
        if isinstance(document, dict):
            for key in JSON_KEYS:
                if isinstance(document.get(key), str) and document[key]:
                    return document[key]
            raise SecretUnavailable(f"the secret is a JSON object without any of {', '.join(JSON_KEYS)}")
    if not stripped:
        raise SecretUnavailable("the secret is empty")
    return stripped


def _register(value: str) -> None:
    register_secret(value)
    register_secret(base64.b64encode(value.encode("utf-8")).decode("ascii"))
