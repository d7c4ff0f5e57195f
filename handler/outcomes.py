"""A job's final outcome told to CI360 and EventBridge, from whichever function ends the job (the webhook,
the worker, the fan-out's finalizer or its abandon step): once per outcome (``transforms.jobs.finish``),
counted, and never allowed to change the answer or the landing."""

from __future__ import annotations

from typing import Any

from handler.runtime import logger, record_delivery
from handler.services import services
from transforms.ci360.payload import Job
from transforms.errors import ConnectorError
from transforms.jobs.finish import finish
from transforms.progress import Deadline
from transforms.settings import Settings


def tell(job: Job, outcome: dict[str, Any] | ConnectorError, settings: Settings, mode: str,
         deadline: Deadline | None) -> dict[str, Any] | None:
    """The delivery report, or None (nothing configured, a repeat, or the report itself failed: logged)."""
    try:
        report = finish(job, outcome, settings, services(settings), mode, deadline)
    except Exception:
        logger.exception("the outcome could not be reported")
        return None
    record_delivery(report)
    return report
