"""The outcome, back to CI360 as an external event (CONTRACT.md, "Reporting an outcome back to CI360").

``POST <external gateway>/marketingGateway/events`` with ``Authorization: Bearer <JWT>``: HS256 over the
claims ``{"clientID": <tenant id>}``, keyed with the access point's client secret base64-encoded (the
bytes of the base64 text, as SAS's own samples sign it), and a JSON body: ``eventName``, the identity
attribute, and the attributes a CI360 user acts on, every value as text.

Delivery never changes the landing: it is bounded by ``ci360_events_timeout_s`` (and by the time the
caller has left), tried again on a timeout, a dropped connection, 429 or 5xx with a short backoff, and
never on another 4xx (a refused token or an unknown event will be refused again), except once on a 401
when the secret re-read from Secrets Manager has changed meanwhile (rotated while the container was warm).
"""

from __future__ import annotations

import base64
import json
import time
import warnings
from collections.abc import Callable
from typing import Any

import jwt
import urllib3
from jwt.warnings import InsecureKeyLengthWarning

from transforms.outcomes.client_secret import ClientSecret, SecretUnavailable
from transforms.outcomes.delivery import Delivery
from transforms.outcomes.final import Final, error_message
from transforms.settings import Settings

ATTEMPTS = 3
BACKOFF_S = (0.5, 1.0)  # before the second and the third attempt
CONNECT_TIMEOUT_S = 3.0  # at most, per attempt (less when less time is left)
MIN_ATTEMPT_S = 0.25  # less time left than this: no further attempt
MIN_TRY_S = 0.5  # an attempt gets at least this (or what is left), however many could follow
RETRY_STATUSES = frozenset({429, 500, 502, 503, 504})
MAX_ANSWER_BYTES = 4096  # CI360's answer is read (to reuse the connection), never kept or logged

# The event's attributes, in the order a CI360 user sees them (README, "Outcomes back to CI360").
ATTRIBUTES = ("status", "occurrenceId", "taskId", "taskName", "responseTrackingCode", "bucket", "key",
              "format", "rows", "bytesWritten", "seconds", "errorCode", "errorMessage")


def bearer_token(tenant_id: str, secret: str) -> str:
    """The JWT CI360's external gateway accepts: HS256, claims {"clientID": tenant id}, the key being the
    client secret base64-encoded (the encoded text's bytes: not decoded again)."""
    key = base64.b64encode(secret.encode("utf-8"))
    with warnings.catch_warnings():  # the key's length is CI360's choice, not ours
        warnings.simplefilter("ignore", InsecureKeyLengthWarning)
        return jwt.encode({"clientID": tenant_id}, key, algorithm="HS256")


def event_body(final: Final, settings: Settings) -> dict[str, str]:
    """eventName, the identity, and every attribute as text ("" when it does not apply)."""
    result = final.result or {}
    job = final.job
    error = final.error
    values: dict[str, Any] = {
        "status": final.status,
        "occurrenceId": job.occurrence_id,
        "taskId": job.task_id,
        "taskName": job.task_name,
        "responseTrackingCode": job.response_tracking_code,
        "bucket": result.get("bucket") or job.bucket,
        "key": ",".join(final.keys()),
        "format": result.get("format"),
        "rows": result.get("rows"),
        "bytesWritten": result.get("bytesWritten"),
        "seconds": result.get("seconds"),
        "errorCode": error.code if error else None,
        "errorMessage": error_message(error) if error else None,
    }
    body = {"eventName": str(settings.ci360_event_name),
            str(settings.ci360_identity_attribute): str(settings.ci360_identity_value)}
    body.update({name: "" if values[name] is None else str(values[name]) for name in ATTRIBUTES})
    return body


class Gateway:
    """One tenant's events endpoint, its token (signed once per container) and a connection pool."""

    def __init__(self, url: str, tenant_id: str, secret: ClientSecret, timeout_s: float,
                 pool: urllib3.PoolManager | None = None, clock: Callable[[], float] = time.monotonic,
                 sleep: Callable[[float], None] = time.sleep) -> None:
        self.url = url
        self._tenant_id = tenant_id
        self._secret = secret
        self._token: str | None = None
        self.timeout_s = timeout_s
        self._pool = pool or urllib3.PoolManager(num_pools=2, maxsize=2, retries=False)
        self._clock = clock
        self._sleep = sleep

    def __repr__(self) -> str:
        return f"Gateway(url={self.url!r})"

    def send(self, body: dict[str, str], time_left_s: float | None = None) -> Delivery:
        """POST the event; bounded by ``timeout_s`` and ``time_left_s``, whichever is shorter."""
        try:
            token = self._bearer()
        except SecretUnavailable as exc:
            return Delivery(False, 0, error=str(exc))
        budget = self.timeout_s if time_left_s is None else min(self.timeout_s, time_left_s)
        stop_at = self._clock() + budget
        data = json.dumps(body).encode("utf-8")
        headers = {"Content-Type": "application/json", "Authorization": f"Bearer {token}"}
        status: int | None = None
        error = "no time left to send it"
        attempts = 0
        rotated = resign = False
        for attempt in range(ATTEMPTS):
            if attempt and not resign:  # a token signed again after a rotation is sent at once
                self._sleep(max(0.0, min(BACKOFF_S[attempt - 1], stop_at - self._clock() - MIN_ATTEMPT_S)))
            left = stop_at - self._clock()
            if left < MIN_ATTEMPT_S:
                break
            # Share what is left among the attempts still possible, so one hang does not take it all.
            per_try = max(left / (ATTEMPTS - attempt), min(left, MIN_TRY_S))
            timeout = urllib3.Timeout(connect=min(CONNECT_TIMEOUT_S, per_try), read=per_try, total=per_try)
            attempts += 1
            resign = False
            try:
                answer = self._pool.request("POST", self.url, body=data, headers=headers, timeout=timeout,
                                            retries=False, redirect=False, preload_content=False)
                try:
                    answer.read(MAX_ANSWER_BYTES)
                finally:
                    answer.release_conn()
            except urllib3.exceptions.HTTPError as exc:
                status, error = None, _failure(exc)
                continue
            status = answer.status
            if 200 <= status < 300:
                return Delivery(True, attempts, status)
            error = f"CI360 answered {status}"
            if status == 401 and not rotated and self._secret.refresh():
                rotated = resign = True
                self._token = None
                headers["Authorization"] = f"Bearer {self._bearer()}"
                continue
            if status not in RETRY_STATUSES:
                break
        return Delivery(False, attempts, status, error)

    def _bearer(self) -> str:
        if self._token is None:
            self._token = bearer_token(self._tenant_id, self._secret.value())
        return self._token


def _failure(exc: urllib3.exceptions.HTTPError) -> str:
    """A transport failure by kind, never its text (urllib3's can hold the URL)."""
    # First: urllib3 makes a refused connection a kind of ConnectTimeoutError.
    if isinstance(exc, urllib3.exceptions.NewConnectionError):
        return "could not connect"
    if isinstance(exc, urllib3.exceptions.ConnectTimeoutError):
        return "timed out connecting"
    if isinstance(exc, urllib3.exceptions.TimeoutError):
        return "timed out"
    if isinstance(exc, urllib3.exceptions.ProtocolError):
        return "connection dropped"
    return f"no answer ({type(exc).__name__})"
