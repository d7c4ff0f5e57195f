"""The CI360 access point's client secret: read once per container, never logged.

Deployed, it comes from AWS Secrets Manager (``ci360_client_secret_arn``; the role may read exactly that
secret); on a local invoke it may be given as ``ci360_client_secret``. The value is registered with the
log scrubbing (``transforms.redact``), plain and base64-encoded (the JWT's key), before anything else
can see it.

A secret rotated while a container is warm would leave that container signing with the old one until it
is recycled (hours): so when CI360 refuses a token (401), ``refresh`` reads Secrets Manager again; the
first refusal always, later ones at most once every ``REFRESH_EVERY_S`` (a secret that stays wrong costs
one read per interval, not one per event). A secret given as a setting has nothing to re-read.
"""

from __future__ import annotations

import base64
import json
import threading
import time
from collections.abc import Callable
from typing import Any

from transforms.aws import SDK_ERRORS, aws_failure
from transforms.redact import register_secret

# A JSON secret (as the console's "key/value" form stores one) holds the client secret under one of these.
JSON_KEYS = ("client_secret", "clientSecret", "secret")
REFRESH_EVERY_S = 300.0  # after the first, at most one re-read on a refusal per this many seconds


class SecretUnavailable(Exception):
    """The secret could not be read; the message names why (an AWS error code), never a value."""


class ClientSecret:
    def __init__(self, arn: str | None, value: str | None = None,
                 secretsmanager: Callable[[], Any] | None = None,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self._arn = arn
        self._value = value
        self._secretsmanager = secretsmanager
        self._lock = threading.Lock()
        self._clock = clock
        self._refreshed_at: float | None = None
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

    def refresh(self) -> bool:
        """After a refusal: read Secrets Manager again; whether the secret changed (and so is worth signing
        with again). False without a re-read when the secret is a setting, or was re-read too recently."""
        with self._lock:
            if not self._arn or self._secretsmanager is None:
                return False
            now = self._clock()
            if self._refreshed_at is not None and now - self._refreshed_at < REFRESH_EVERY_S:
                return False
            self._refreshed_at = now
            try:
                value = self._read()
            except SecretUnavailable:
                return False
            _register(value)
            changed, self._value = value != self._value, value
            return changed

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
