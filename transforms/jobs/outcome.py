"""What became of a job, as the core tells its callers: landed (with its result), accepted, or running.

A typed value, not a response: ``handler.responses`` decides what it looks like over HTTP.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

Status = Literal["succeeded", "accepted", "running"]


@dataclass(frozen=True)
class Outcome:
    """``succeeded``: landed, ``result`` is the landing's result; ``accepted``: queued for the worker;
    ``running``: another delivery of the same job is landing it. ``mode``: sync or async."""

    status: Status
    mode: str
    result: dict[str, Any] | None = None

    @property
    def landed(self) -> bool:
        return self.status == "succeeded"

