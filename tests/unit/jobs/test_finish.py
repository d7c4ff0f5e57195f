"""Reporting a final outcome once: the job record's claim decides, and neither a channel nor the record
failing ever reaches the caller (the landing stands)."""

from __future__ import annotations

from typing import Any

from devstack.localstack import webhook_payload
from transforms.ci360.payload import parse_job
from transforms.errors import JobStoreError, SinkError
from transforms.jobs.finish import finish
from transforms.jobs.services import Services
from transforms.outcomes.delivery import Delivery
from transforms.outcomes.report import Notifier
from transforms.settings import Settings

SETTINGS = Settings.from_env({"s3_bucket_name": "target", "source_host_allowlist": "https://*.example",
                              "jobs_table": "jobs"})
URL = "https://staging.example/x_data?X-Amz-Signature=s"
JOB = parse_job(webhook_payload(URL, URL, "a.csv", "occ-1"), SETTINGS)


class Store:
    def __init__(self, claim: bool | Exception = True, record: Exception | None = None) -> None:
        self.claim, self.record = claim, record
        self.reports: list[tuple[dict, bool]] = []

    def claim_report(self, job: Any) -> bool:
        if isinstance(self.claim, Exception):
            raise self.claim
        return self.claim

    def reported(self, job: Any, report: dict, landed: bool) -> None:
        if self.record:
            raise self.record
        self.reports.append((report, landed))


class Events:
    def __init__(self) -> None:
        self.entries: list[dict] = []

    def put_events(self, Entries):  # noqa: N803 (boto3's name)
        self.entries.extend(Entries)
        return {"FailedEntryCount": 0, "Entries": [{"EventId": "e-1"}],
                "ResponseMetadata": {"HTTPStatusCode": 200}}


class Gateway:
    def __init__(self) -> None:
        self.bodies: list[dict] = []

    def send(self, body: dict, time_left_s: float | None = None) -> Delivery:
        self.bodies.append(body)
        return Delivery(True, 1, 201)


def services(store: Store, notifier: Notifier | None) -> Services:
    class WithStore(Services):
        def job_store(self, settings: Settings) -> Any:
            return store

    return WithStore(s3=None, http=None, notifier=notifier)  # type: ignore[arg-type]


def notifier() -> Notifier:
    return Notifier(Gateway(), Events(), "bus")  # type: ignore[arg-type]


def test_reported_once_claimed_and_recorded() -> None:
    store, channels = Store(), notifier()
    report = finish(JOB, {"key": "a.csv", "rows": 4}, SETTINGS, services(store, channels), "sync")
    assert report == {"eventBridge": {"delivered": True, "attempts": 1, "status": 200, "eventId": "e-1"},
                      "ci360": {"delivered": True, "attempts": 1, "status": 201}}
    assert store.reports == [(report, True)]
    assert channels.gateway.bodies[0]["status"] == "succeeded"


def test_a_repeat_tells_nothing() -> None:
    channels = notifier()
    assert finish(JOB, {"key": "a.csv"}, SETTINGS, services(Store(claim=False), channels)) is None
    assert channels.gateway.bodies == [] and channels.events.entries == []


def test_a_failing_table_does_not_silence_the_outcome_nor_fail_the_caller() -> None:
    down = JobStoreError("DynamoDB could not ...", "ThrottlingException")
    store, channels = Store(claim=down, record=down), notifier()
    report = finish(JOB, SinkError("S3 refused", "AccessDenied", 403), SETTINGS, services(store, channels))
    assert report["ci360"]["delivered"] is True and channels.gateway.bodies[0]["errorCode"] == "S3_ERROR"


def test_nothing_configured_nothing_done() -> None:
    store = Store()
    assert finish(JOB, {"key": "a.csv"}, SETTINGS, services(store, None)) is None
    assert finish(JOB, {"key": "a.csv"}, SETTINGS, services(store, Notifier())) is None
    assert store.reports == []
