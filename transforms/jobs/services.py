"""The outside services a run talks to, built once per container by the entry point and passed in."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

from transforms.aws import AwsFailure, translated
from transforms.errors import ConfigurationError, OrchestrationError, QueueError
from transforms.jobs.store import JobStore
from transforms.settings import Settings
from transforms.sources.http import HttpSource

if TYPE_CHECKING:
    from transforms.ci360.payload import Job

_QUEUE_URLS: dict[str, str] = {}
_MACHINE_ARNS: dict[str, str] = {}


class FanoutJobs(Protocol):
    """Where a fan-out's job waits for its steps (``transforms.fanout``, a room above this one): the
    execution starts with identifiers only, never the job's presigned URLs (its history keeps them)."""

    def store(self, job: Job, settings: Settings) -> dict[str, Any]:
        """Store the job; return the execution's input."""

    def discard(self, job: Job, settings: Settings) -> None:
        """Remove the stored job (the execution could not be started)."""


@dataclass(frozen=True)
class Services:
    s3: Any
    http: HttpSource
    glue: Any = None  # only when settings.glue_database is set
    sqs: Any = None  # only when settings.jobs_queue is set
    dynamodb: Any = None  # only when a jobs or idempotency table is set
    notifier: Any = None  # transforms.outcomes.report.Notifier: where final outcomes are told
    stepfunctions: Any = None  # only when settings.fanout_state_machine is set
    fanout_jobs: FanoutJobs | None = None  # with stepfunctions: where a fan-out's job is stored
    sts: Any = None  # with stepfunctions: the account, for a state machine named by name

    def queue_url(self, queue: str | None) -> str:
        """A queue named in the settings by URL, or by name (resolvable offline in serverless.yml, unlike a
        URL, which holds the account id); a name is looked up once per container."""
        if not queue:
            raise ConfigurationError("jobs_queue (the job queue) is not set")
        if queue.startswith(("https://", "http://")):
            return queue
        if queue not in _QUEUE_URLS:
            def missing(failure: AwsFailure) -> QueueError:
                return QueueError(f"the job queue {queue!r} could not be found ({failure.code})",
                                  failure.code)

            with translated(missing):
                _QUEUE_URLS[queue] = self.sqs.get_queue_url(QueueName=queue)["QueueUrl"]
        return _QUEUE_URLS[queue]

    def state_machine_arn(self, machine: str) -> str:
        """A state machine named in the settings by ARN, or by name (resolvable offline in serverless.yml,
        unlike an ARN, which holds the account id): a name becomes the ARN once per container, from the
        client's partition and region and the caller's account (STS GetCallerIdentity needs no grant)."""
        if machine.startswith("arn:"):
            return machine
        if machine not in _MACHINE_ARNS:
            def unknown(failure: AwsFailure) -> OrchestrationError:
                return OrchestrationError(f"the account of the state machine {machine!r} could not be "
                                          f"found ({failure.code})", failure.code)

            with translated(unknown):
                account = self.sts.get_caller_identity()["Account"]
            meta = self.stepfunctions.meta
            _MACHINE_ARNS[machine] = (f"arn:{meta.partition}:states:{meta.region_name}:{account}"
                                      f":stateMachine:{machine}")
        return _MACHINE_ARNS[machine]

    def job_store(self, settings: Settings) -> JobStore | None:
        if settings.jobs_table and self.dynamodb is not None:
            return JobStore(self.dynamodb, settings.jobs_table)
        return None
