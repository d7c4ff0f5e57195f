"""One contender, one transfer, in a fresh process: ``python -m bench.contender`` with BENCH_SPEC set.

The parent passes a JSON spec (contender name, presigned URLs, target bucket and key, temp dir) in the
environment and the standard boto3 variables that point at the local S3. This process runs the transfer
once and prints one line ``BENCH_RESULT {...}`` last: its own wall and CPU time around the transfer,
its peak RSS, and the bytes it caused to be written to disk (``/proc/self/io`` write_bytes), read just
before it exits. Nothing of the benchmark's own data generation ever lives in this process.
"""

from __future__ import annotations

import json
import os
import re
import resource
import sys
import threading
import time
import uuid
from typing import Any

RESULT_MARK = "BENCH_RESULT "

# The deployed artifact has no pandas (requirements.txt); this venv has it for the tests. pyarrow looks
# for pandas on its first pa.array() or pa.scalar() of Python values and imports it when found: here
# that happened mid-transfer, and cost the typed formats ~1 s of CPU and ~50 MB of RSS the function
# never pays. Made unimportable, as in the artifact (pyarrow then takes pandas as not installed).
# numpy likewise (pyarrow requires nothing; duckdb and the tests bring it): imported, its OpenBLAS threads
# spun in the contender (1-2% of the typed formats' CPU in perf, issue 21), which the function never pays.
class _NotDeployed:
    def find_spec(self, name: str, path: Any = None, target: Any = None) -> None:
        if name.partition(".")[0] in NOT_DEPLOYED:
            raise ModuleNotFoundError(f"No module named {name!r} (not in the deployed artifact)", name=name)


NOT_DEPLOYED = {"pandas", "numpy"}


class WriteAudit:
    """Paths this process opens for writing (a Python audit hook, installed before any import of the
    contender's code), each with the phase it happened in, to say where any disk bytes went."""

    paths: list[str] = []
    phase = "start-up"

    @classmethod
    def hook(cls, event: str, args: tuple[Any, ...]) -> None:
        if event != "open":
            return
        path, mode, flags = (tuple(args) + (None, None, None))[:3]
        writing = (isinstance(mode, str) and any(c in mode for c in "wax+")) or (
            isinstance(flags, int) and bool(flags & (os.O_WRONLY | os.O_RDWR | os.O_CREAT)))
        entry = f"{path} ({cls.phase})"
        if writing and entry not in cls.paths:
            cls.paths.append(entry)


def proc_io() -> dict[str, int]:
    """This process's I/O accounting (all threads); write_bytes counts pages it dirtied on disk."""
    try:
        with open("/proc/self/io", encoding="ascii") as handle:
            return {name: int(value) for name, value in
                    (line.split(":") for line in handle if ":" in line)}
    except OSError:
        return {}


def memory_status(field: str) -> int | None:
    """A line of /proc/self/status in bytes: VmHWM is the high-water mark of this process's own memory
    since exec (``ru_maxrss`` would not do: Linux carries the parent's RSS at fork/exec into it)."""
    try:
        with open("/proc/self/status", encoding="ascii") as handle:
            for line in handle:
                if line.startswith(f"{field}:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return None


def cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


class Phases:
    """Seconds spent inside chosen S3 calls (botocore events), to show where a contender's time goes."""

    def __init__(self) -> None:
        self.seconds: dict[str, float] = {}
        self._started: dict[str, float] = {}

    def watch(self, client: Any, operation: str) -> None:
        client.meta.events.register(f"before-call.s3.{operation}",
                                    lambda **_: self._started.__setitem__(operation, time.perf_counter()))
        client.meta.events.register(f"after-call.s3.{operation}", lambda **_: self.stop(operation))

    def stop(self, name: str, started: float | None = None) -> None:
        begun = self._started.pop(name, None) if started is None else started
        if begun is not None:
            self.seconds[name] = self.seconds.get(name, 0.0) + time.perf_counter() - begun


PHASES = Phases()


class ThreadCpu(threading.Thread):
    """CPU seconds by thread group (MainThread, s3-part, gzip, ...), read from /proc/self/task/<tid>/stat
    every 0.2 s while the transfer runs: which work (reading and counting, deflating, uploading) costs
    what. A pool thread's last 0.2 s may be missed when it ends between two samples."""

    def __init__(self) -> None:
        super().__init__(daemon=True, name="bench-sampler")
        self.last: dict[int, tuple[str, float]] = {}
        self.rss_mb: list[int] = []
        self.halt = threading.Event()
        self._tick = os.sysconf("SC_CLK_TCK")
        self.sample()
        self.initial = {tid: seconds for tid, (_, seconds) in self.last.items()}  # before the clock

    def sample(self) -> None:
        for thread in threading.enumerate():
            try:
                with open(f"/proc/self/task/{thread.native_id}/stat", encoding="ascii") as handle:
                    fields = handle.read().rsplit(")", 1)[1].split()
            except (OSError, IndexError):
                continue
            group = re.sub(r"([-_]\d+)+$", "", thread.name) or "?"
            self.last[thread.native_id] = (group, (int(fields[11]) + int(fields[12])) / self._tick)

    def run(self) -> None:
        ticks = 0
        while not self.halt.wait(0.2):
            self.sample()
            ticks += 1
            if ticks % 5 == 0:  # VmRSS once a second: whether memory grows with the file or levels off
                self.rss_mb.append(round((memory_status("VmRSS") or 0) / 2**20))

    def stop(self) -> dict[str, float]:
        self.sample()
        self.halt.set()
        self.join()
        groups: dict[str, float] = {}
        for tid, (group, seconds) in self.last.items():
            if group != "bench-sampler":
                spent = seconds - self.initial.get(tid, 0.0)
                groups[group] = round(groups.get(group, 0.0) + spent, 2)
        return groups


# -- the baseline: what SAS ships ------------------------------------------------------------------

class SasConnector:
    """SAS's S3 bulk connector, restated: stream the data file's GET into a file under the temp dir in
    8 KiB chunks (urllib3, ``stream(8192)``), then ``upload_file`` it with boto3's defaults (default
    client, default TransferConfig), then sign a 24-hour GET link to the result. Like SAS's, it ignores
    the metadata file (no header row) and leaves the file behind (the parent removes it). Its clients are
    module globals there, made at cold start: here they are made before the clock starts."""

    def __init__(self) -> None:
        import boto3
        import urllib3

        self.http = urllib3.PoolManager()
        # SAS's default client, not transforms.aws.client: this models theirs. One difference, so that it
        # is measured as it runs on AWS: there (HTTPS) botocore sends each part's CRC32 in a trailer and
        # signs no payload; against this plain-HTTP sink it would also hash every byte with SHA-256.
        from botocore.config import Config

        self.s3 = boto3.client("s3", config=Config(s3={"payload_signing_enabled": False}))
        PHASES.watch(self.s3, "CompleteMultipartUpload")

    def __call__(self, spec: dict[str, Any]) -> dict[str, Any]:
        local = os.path.join(spec["tmpdir"], spec["key"])
        started = time.perf_counter()
        with self.http.request("GET", spec["data_url"], preload_content=False,
                               decode_content=False) as response:
            if response.status != 200:
                raise RuntimeError(f"data file GET answered HTTP {response.status}")
            with open(local, "wb") as file:
                for chunk in response.stream(8192):
                    file.write(chunk)
        PHASES.stop("download to /tmp", started)
        self.s3.upload_file(local, spec["bucket"], spec["key"])
        self.s3.generate_presigned_url("get_object", Params={"Bucket": spec["bucket"], "Key": spec["key"]},
                                       ExpiresIn=24 * 3600)
        return {"statusCode": 200, "bytesRead": os.path.getsize(local)}


# -- ours: the Lambda handler, invoked as API Gateway would ------------------------------------------

class LambdaContext:
    function_name = "ci360-s3-connector-bench-webhook"
    function_version = "$LATEST"
    memory_limit_in_mb = 1024
    invoked_function_arn = "arn:aws:lambda:us-east-1:123456789012:function:ci360-s3-connector-bench-webhook"

    def __init__(self) -> None:
        self.aws_request_id = str(uuid.uuid4())

    def get_remaining_time_in_millis(self) -> int:
        return 900_000


def connector_event(spec: dict[str, Any]) -> dict[str, Any]:
    payload = {
        "task": {"occurrenceId": str(uuid.uuid4()), "taskId": "8eb42f45-7991-48ae-a30a-8e033a88668d",
                 "taskName": "AWS S3 Upload", "outboundEventName": "matchDataUploaded"},
        "tenant": {"externalTenantId": "0dh01d000a00013a3a2cac00", "tenantMoniker": "bench"},
        "presignedUrls": {"dataFile": spec["data_url"], "metadataFile": spec["metadata_url"]},
        "sendParameters": {"s3_filename ": spec["key"]},
    }
    return {"resource": "/upload", "path": "/upload", "httpMethod": "POST",
            "headers": {"Content-Type": "application/json", "x-api-key": "bench"},
            "requestContext": {"requestId": str(uuid.uuid4()), "stage": "bench"},
            "body": json.dumps(payload), "isBase64Encoded": False}


class OurConnector:
    """The webhook handler as API Gateway calls it; its S3 client (made once per warm container) exists
    before the clock starts."""

    def __init__(self) -> None:
        from handler import webhook

        try:
            from handler.runtime import s3_client  # where the shared clients live now
        except ImportError:
            s3_client = webhook.s3_client  # type: ignore[attr-defined]
        self.handle = webhook.handle
        PHASES.watch(s3_client(), "CompleteMultipartUpload")

    def __call__(self, spec: dict[str, Any]) -> dict[str, Any]:
        response = self.handle(connector_event(spec), LambdaContext())
        body = json.loads(response["body"])
        return {**body, "statusCode": response["statusCode"]}


CONTENDERS = {"sas": SasConnector, "ours": OurConnector}


def main() -> int:
    sys.meta_path.insert(0, _NotDeployed())  # type: ignore[arg-type]  (before anything loads pyarrow)
    spec = json.loads(os.environ["BENCH_SPEC"])
    sys.addaudithook(WriteAudit.hook)
    # Imports and clients are part of a cold start, not of the transfer: made before the clock starts.
    run = CONTENDERS[spec["contender"]]()
    if spec["contender"] == "ours" and spec["key"].endswith((".parquet", ".orc", ".jsonl", ".jsonl.gz")):
        import transforms.formats.columnar  # noqa: F401 (a warm container has imported pyarrow already)
    profiler = None
    if os.environ.get("BENCH_PROFILE", "").strip() not in ("", "0"):
        import cProfile

        profiler = cProfile.Profile()
    WriteAudit.phase = "transfer"
    rss_before = memory_status("VmRSS")
    io_before = proc_io()
    cpu_before = cpu_seconds()
    usage_before = resource.getrusage(resource.RUSAGE_SELF)
    threads = ThreadCpu()
    threads.start()
    started = time.perf_counter()
    if profiler:
        profiler.enable()
    outcome = run(spec)
    if profiler:
        profiler.disable()
    wall = time.perf_counter() - started
    cpu = cpu_seconds() - cpu_before
    usage = resource.getrusage(resource.RUSAGE_SELF)
    by_thread = threads.stop()
    WriteAudit.phase = "after"
    io_after = proc_io()
    result = {
        "outcome": outcome,
        "wall": wall,
        "cpu": cpu,
        "cpu_system": usage.ru_stime - usage_before.ru_stime,  # the kernel's share: copies, page faults
        "context_switches": {"voluntary": usage.ru_nvcsw - usage_before.ru_nvcsw,
                             "involuntary": usage.ru_nivcsw - usage_before.ru_nivcsw},
        "peak_rss": memory_status("VmHWM"),
        "rss_before": rss_before,
        "maxrss_kb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss,
        "write_bytes": io_after.get("write_bytes"),
        "write_bytes_transfer": (io_after.get("write_bytes", 0) - io_before.get("write_bytes", 0)
                                 if io_after else None),
        "cancelled_write_bytes": io_after.get("cancelled_write_bytes"),
        "opened_for_write": WriteAudit.paths,
        "phases": PHASES.seconds,
        "cpu_by_thread": by_thread,
        "rss_mb_each_second": threads.rss_mb,
    }
    if profiler:
        import pstats

        print("-- cProfile of the main thread during the transfer (upload threads are not in it):")
        pstats.Stats(profiler, stream=sys.stdout).sort_stats("tottime").print_stats(25)
    sys.stdout.flush()
    print(RESULT_MARK + json.dumps(result), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
