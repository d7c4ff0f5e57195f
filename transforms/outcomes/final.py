"""A job's final outcome, as both channels describe it: landed with its result, or failed with its error."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from transforms.ci360.payload import Job
from transforms.errors import ConnectorError
from transforms.redact import scrub

MAX_MESSAGE_CHARS = 500  # an error message in an event: enough to act on, never a whole page


@dataclass(frozen=True)
class Final:
    job: Job
    mode: str  # sync (the webhook's answer), async (the worker's), fanout (its last step), replay (the CLI)
    result: Mapping[str, Any] | None = None  # landed
    error: ConnectorError | None = None  # failed

    @classmethod
    def of(cls, job: Job, outcome: Mapping[str, Any] | ConnectorError, mode: str) -> Final:
        if isinstance(outcome, ConnectorError):
            return cls(job, mode, error=outcome)
        return cls(job, mode, result=outcome)

    @property
    def landed(self) -> bool:
        return self.error is None

    @property
    def status(self) -> str:
        return "succeeded" if self.landed else "failed"

    def keys(self) -> list[str]:
        """Where it landed (or was to land): a fan-out's result lists ``keys``, a landing's one ``key``."""
        result = self.result or {}
        if isinstance(result.get("keys"), list):
            return [str(key) for key in result["keys"]]
        return [str(result.get("key") or self.job.key)]

    def error_json(self) -> dict[str, Any] | None:
        """The error as the response said it, scrubbed again (no URL's query, no secret, ever)."""
        if self.error is None:
            return None
        return {"code": self.error.code, "message": error_message(self.error),
                "details": scrub_value(self.error.details)}


def error_message(error: ConnectorError) -> str:
    message = scrub(error.message)
    return message if len(message) <= MAX_MESSAGE_CHARS else message[:MAX_MESSAGE_CHARS] + "..."


def scrub_value(value: Any) -> Any:
    if isinstance(value, str):
        return scrub(value)
    if isinstance(value, Mapping):
        return {str(k): scrub_value(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [scrub_value(v) for v in value]
    return value
