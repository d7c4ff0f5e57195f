"""What became of one outcome event: delivered or not, the answer's status, how many tries it took.

It goes into the job's result and record (and a metric), so that a marketer or an operator can tell
from the job alone whether CI360 and EventBridge heard of it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Delivery:
    delivered: bool
    attempts: int
    status: int | None = None  # the HTTP status of the last answer (None: no answer at all)
    error: str | None = None  # why it was not delivered: a code or a short reason, never a secret
    event_id: str | None = None  # EventBridge's id of the event put

    def to_json(self) -> dict[str, Any]:
        report: dict[str, Any] = {"delivered": self.delivered, "attempts": self.attempts}
        for name, value in (("status", self.status), ("error", self.error), ("eventId", self.event_id)):
            if value is not None:
                report[name] = value
        return report
