"""`make bench`: our connector against the baseline SAS ships, side by side on one local S3.

What happens, in order:

1. The audience is generated (deterministically, streamed, a segment of ``BENCH_GB`` GiB at a time)
   into ``.bench/data/`` once and reused afterwards; this process and its helpers do that, never a
   measured process.
2. One moto server (its own process) is the local S3: a "CI360 staging" bucket holds the data file
   (1x = one segment, 4x = four) and its JSON metadata; presigned GET URLs are made for both, as
   CI360 does.
3. Each contender runs (per round and size) in a fresh ``python -m bench.contender`` process, so the peak RSS,
   CPU time and disk writes are its own. The result is checked (size, first and last bytes, row count,
   and for gzip the CRC-32 and length in the trailer) and deleted before the next run.
4. The table goes to BENCHMARKS.md and to stdout.

Settings (environment):
- ``BENCH_GB``: the 1x size in GiB (default 1; e.g. 0.1 for a quick run);
- ``BENCH_4X=0`` skips the 4x memory line;
- ``BENCH_1X_CONTENDERS``, ``BENCH_4X_CONTENDERS``: which run, in order; a name given twice runs twice
  (default ``sas,csv,gzip,sas,csv`` at 1x: the close race of baseline and passthrough twice, interleaved;
  ``sas,csv,gzip`` at 4x);
- ``BENCH_PROFILE=1``: a cProfile of each contender's main thread, in ``.bench/logs/``;
- ``BENCH_MOTO_PATCHES=0``: plain moto instead of bench/s3server.py (too hungry for the 4x line).
"""

from __future__ import annotations

import contextlib
import datetime as dt
import io
import json
import multiprocessing
import os
import platform
import shutil
import subprocess
import sys
import threading
import time
import uuid
import zlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import boto3
import moto
import psutil
from boto3.s3.transfer import TransferConfig

from bench import data
from bench.contender import RESULT_MARK
from devstack.localstack import MotoServer, s3_client

ROOT = Path(__file__).absolute().parent.parent  # not resolved: a snapshot of the tree may link bench/ in
WORK = ROOT / ".bench"
DATA_DIR = WORK / "data"
TMP_DIR = WORK / "tmp"
LOG_DIR = WORK / "logs"  # each contender's output (its logs; its cProfile with BENCH_PROFILE=1)
REPORT = ROOT / "BENCHMARKS.md"
BEGIN = "<!-- bench/run.py writes from here: make bench -->"
END = "<!-- bench/run.py writes up to here -->"
GIB = 1 << 30
MB = 1_000_000
PROBE = 64 * 1024  # bytes compared at each end of a result
MEMORY_FLOOR = 3 * GIB  # below this much available memory the run is stopped
PROXY_NAMES = {"http_proxy", "https_proxy", "no_proxy", "all_proxy"}


@dataclass(frozen=True)
class Contender:
    name: str  # as shown in the table
    kind: str  # bench.contender's CONTENDERS key
    suffix: str  # the target key's extension
    label: str  # short id for settings


CONTENDERS = {
    "sas": Contender("baseline: SAS connector (/tmp + upload_file)", "sas", ".csv", "sas"),
    "csv": Contender("ours: passthrough (.csv, header added)", "ours", ".csv", "csv"),
    "gzip": Contender("ours: gzip (.csv.gz, level 1: the default)", "ours", ".csv.gz", "gzip"),
}


# -- data -------------------------------------------------------------------------------------------

def _generate(segment: int, target: int, path: str) -> None:
    partial = f"{path}.partial"
    with open(partial, "wb") as out:
        for chunk in data.rows(segment, target):
            out.write(chunk)
    os.replace(partial, path)


def segment_files(count: int, segment_bytes: int) -> list[Path]:
    """The cached segments, generated (two at a time, one per core) when missing."""
    DATA_DIR.mkdir(parents=True, exist_ok=True)
    paths = [DATA_DIR / f"segment-v{data.GENERATOR_VERSION}-{segment_bytes}-{n}.csv" for n in range(count)]
    missing = [(n, segment_bytes, str(path)) for n, path in enumerate(paths) if not path.exists()]
    if missing:
        started = time.monotonic()
        print(f"generating {len(missing)} segment(s) of {segment_bytes / GIB:.2f} GiB into {DATA_DIR} ...",
              flush=True)
        with multiprocessing.get_context("spawn").Pool(min(len(missing), os.cpu_count() or 1)) as pool:
            pool.starmap(_generate, missing)
        print(f"  generated in {time.monotonic() - started:.0f} s", flush=True)
    return paths


class StagingReader(io.RawIOBase):
    """The segments read back to back for upload_fileobj, noting what the results are checked against."""

    def __init__(self, paths: list[Path]) -> None:
        self._paths = list(paths)
        self._file: Any = None
        self.size = 0
        self.rows = 0
        self.crc_with_header = zlib.crc32(data.header_line())
        self.head = b""
        self.tail = b""

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        while True:
            if self._file is None:
                if not self._paths:
                    return 0
                self._file = open(self._paths.pop(0), "rb")  # noqa: SIM115 (closed at its end)
            count = self._file.readinto(buffer)
            if count:
                chunk = bytes(memoryview(buffer)[:count])
                self.size += count
                self.rows += chunk.count(b"\n")  # no generated field holds a newline
                self.crc_with_header = zlib.crc32(chunk, self.crc_with_header)
                if len(self.head) < PROBE:
                    self.head += chunk[: PROBE - len(self.head)]
                self.tail = (self.tail + chunk)[-PROBE:]
                return count
            self._file.close()
            self._file = None


@dataclass
class Staged:
    label: str  # "1x" or "4x"
    key: str
    size: int
    rows: int
    crc_with_header: int
    head: bytes
    tail: bytes
    data_url: str
    metadata_url: str
    stage_seconds: float


def stage(s3: Any, bucket: str, label: str, paths: list[Path]) -> Staged:
    prefix = f"exports/1019/{uuid.uuid4()}"
    started = time.monotonic()
    reader = StagingReader(paths)
    # Buffered, so that every part is full length even where one segment file ends and the next begins.
    s3.upload_fileobj(io.BufferedReader(reader, 1 << 20), bucket, f"{prefix}_data",
                      Config=TransferConfig(multipart_chunksize=64 * 1024 * 1024, max_concurrency=4))
    s3.put_object(Bucket=bucket, Key=f"{prefix}_metadata", Body=data.metadata_json())
    urls = [s3.generate_presigned_url("get_object", Params={"Bucket": bucket, "Key": key}, ExpiresIn=6 * 3600)
            for key in (f"{prefix}_data", f"{prefix}_metadata")]
    return Staged(label, f"{prefix}_data", reader.size, reader.rows, reader.crc_with_header, reader.head,
                  reader.tail, urls[0], urls[1], time.monotonic() - started)


def unstage(s3: Any, bucket: str, staged: Staged) -> None:
    prefix = staged.key.removesuffix("_data")
    s3.delete_objects(Bucket=bucket, Delete={"Objects": [{"Key": f"{prefix}_data"},
                                                         {"Key": f"{prefix}_metadata"}]})


# -- one run ----------------------------------------------------------------------------------------

@dataclass
class Run:
    contender: Contender
    size: str
    data_bytes: int
    round: int = 1
    wall: float = 0.0  # the transfer, inside the child (imports excluded, as in a warm Lambda)
    cpu: float = 0.0  # user + sys of the child during the transfer
    process_wall: float = 0.0  # the whole child process, interpreter start included
    process_cpu: float = 0.0
    peak_rss_mb: float = 0.0  # VmHWM of the child process (whole life since exec)
    rss_before_mb: float = 0.0  # its RSS when the clock started (interpreter, imports, clients)
    sampled_rss_mb: float = 0.0  # highest RSS seen by sampling every 50 ms (a cross-check)
    disk_bytes: int | None = None  # /proc/<child>/io write_bytes at exit, whole life
    disk_bytes_transfer: int | None = None  # the same, during the transfer only
    opened_for_write: list[str] = field(default_factory=list)  # from the child's audit hook
    phases: dict[str, float] = field(default_factory=dict)  # seconds inside chosen steps (see contender)
    cpu_by_thread: dict[str, float] = field(default_factory=dict)  # CPU seconds by thread group
    server_cpu: float = 0.0  # CPU the moto server spent meanwhile (same machine, 2 cores shared)
    server_peak_rss_mb: float = 0.0
    checks: list[str] = field(default_factory=list)
    outcome: dict[str, Any] = field(default_factory=dict)

    @property
    def mb_per_s(self) -> float:
        return self.data_bytes / MB / self.wall if self.wall else 0.0


class OutOfMemory(RuntimeError):
    """The machine ran low on memory (moto holds whole objects in memory at times) and the run was stopped."""


class Sampler(threading.Thread):
    """Peak RSS of the child and of the server every 50 ms; a guard on the machine's free memory.

    When less than MEMORY_FLOOR is available, it kills ``victim`` (a process this benchmark started) so
    that the benchmark fails rather than the machine.
    """

    def __init__(self, child: int | None, server: int, victim: int) -> None:
        super().__init__(daemon=True)
        self._child = psutil.Process(child) if child else None
        self._server = psutil.Process(server)
        self._victim = victim
        self.child_peak = 0
        self.server_peak = 0
        self.min_available = psutil.virtual_memory().available
        self.tripped = False
        self.stop = threading.Event()

    def run(self) -> None:
        while not self.stop.is_set():
            try:
                if self._child:
                    self.child_peak = max(self.child_peak, self._child.memory_info().rss)
                self.server_peak = max(self.server_peak, self._server.memory_info().rss)
            except psutil.Error:
                pass
            self.min_available = min(self.min_available, psutil.virtual_memory().available)
            if self.min_available < MEMORY_FLOOR and not self.tripped:
                self.tripped = True
                print(f"!! only {self.min_available / GIB:.1f} GiB of memory left: stopping process "
                      f"{self._victim}", flush=True)
                with contextlib.suppress(psutil.Error):
                    psutil.Process(self._victim).kill()
            self.stop.wait(0.05)


def run_contender(contender: Contender, staged: Staged, bucket: str, server: MotoServer, round_: int) -> Run:
    key = f"bench/{staged.label}/{contender.label}-{uuid.uuid4().hex[:8]}{contender.suffix}"
    spec = {"contender": contender.kind, "data_url": staged.data_url, "metadata_url": staged.metadata_url,
            "bucket": bucket, "key": key.replace("/", "_") if contender.kind == "sas" else key,
            "tmpdir": str(TMP_DIR)}
    # SAS's connector writes /tmp/<s3_filename>; a flat name keeps that a plain file in our temp dir.
    key = spec["key"]
    # Deployment settings are lowercase environment names (s3_bucket_name, gzip_level, ...): every one
    # is left at its default except the target bucket and the allowlist that admits the local S3.
    env = {name: value for name, value in os.environ.items() if not name.islower() or name in PROXY_NAMES}
    env.update({**server.environ(), "s3_bucket_name": bucket, "source_host_allowlist": server.endpoint,
                "BENCH_SPEC": json.dumps(spec), "TMPDIR": str(TMP_DIR), "PYTHONDONTWRITEBYTECODE": "1",
                "PYTHONPATH": str(ROOT)})
    server_proc = psutil.Process(server.process.pid)
    server_cpu = sum(server_proc.cpu_times()[:2])
    started = time.perf_counter()
    child = subprocess.Popen([sys.executable, "-m", "bench.contender"], cwd=ROOT, env=env,
                             stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    sampler = Sampler(child.pid, server.process.pid, victim=child.pid)
    sampler.start()
    assert child.stdout is not None
    output = child.stdout.read().decode("utf-8", "replace")
    _, status, usage = os.wait4(child.pid, 0)
    child.returncode = os.waitstatus_to_exitcode(status)
    process_wall = time.perf_counter() - started
    sampler.stop.set()
    sampler.join()
    if sampler.tripped:
        raise OutOfMemory(f"{contender.name} at {staged.label} stopped: the machine ran low on memory")
    LOG_DIR.mkdir(parents=True, exist_ok=True)
    (LOG_DIR / f"{staged.label}-{contender.label}.log").write_text(output)
    lines = [line for line in output.splitlines() if line.startswith(RESULT_MARK)]
    if child.returncode != 0 or not lines:
        raise RuntimeError(f"{contender.name} at {staged.label} failed (exit {child.returncode}):\n"
                           f"{output[-4000:]}")
    result = json.loads(lines[-1][len(RESULT_MARK):])
    run = Run(contender, staged.label, staged.size, round_, wall=result["wall"], cpu=result["cpu"],
              process_wall=process_wall, process_cpu=usage.ru_utime + usage.ru_stime,
              peak_rss_mb=(result["peak_rss"] or sampler.child_peak) / MB,
              rss_before_mb=(result["rss_before"] or 0) / MB,
              sampled_rss_mb=sampler.child_peak / MB,
              disk_bytes=result["write_bytes"], disk_bytes_transfer=result["write_bytes_transfer"],
              opened_for_write=result["opened_for_write"], phases=result["phases"],
              cpu_by_thread=result.get("cpu_by_thread", {}),
              server_cpu=sum(server_proc.cpu_times()[:2]) - server_cpu,
              server_peak_rss_mb=sampler.server_peak / MB, outcome=result["outcome"])
    try:
        run.checks = verify(contender, staged, bucket, key, run.outcome)
    except AssertionError as exc:
        raise AssertionError(f"{exc}\n-- its output (last 6000 characters):\n{output[-6000:]}") from None
    print(f"  {contender.name} @ {staged.label}: wall {run.wall:.1f} s, cpu {run.cpu:.1f} s, "
          f"peak RSS {run.peak_rss_mb:.0f} MB (sampled {run.sampled_rss_mb:.0f}), disk {run.disk_bytes} B "
          f"({run.disk_bytes_transfer} B in the transfer; opened for writing: {run.opened_for_write}), "
          f"{run.mb_per_s:.0f} MB/s "
          f"[{'; '.join(run.checks)}] (server peak RSS {run.server_peak_rss_mb:.0f} MB, "
          f"machine min available {sampler.min_available / GIB:.1f} GiB)", flush=True)
    s3_client().delete_object(Bucket=bucket, Key=key)
    for leftover in TMP_DIR.iterdir():  # SAS's connector never cleans /tmp; we do, between runs
        leftover.unlink()
    return run


# -- checking a result cheaply ----------------------------------------------------------------------

def _range(s3: Any, bucket: str, key: str, spec: str) -> bytes:
    return s3.get_object(Bucket=bucket, Key=key, Range=spec)["Body"].read()


def verify(contender: Contender, staged: Staged, bucket: str, key: str, outcome: dict[str, Any]) -> list[str]:
    """Size, the first and last 64 KiB, the row count; for gzip, the trailer's CRC-32 and length."""
    s3 = s3_client()
    if outcome.get("statusCode") != 200:
        raise AssertionError(f"{contender.name}: response {outcome}")
    size = s3.head_object(Bucket=bucket, Key=key)["ContentLength"]
    header = data.header_line()
    checks = []
    if contender.suffix == ".csv":
        expected_head = staged.head if contender.kind == "sas" else (header + staged.head)[:PROBE]
        expected_size = staged.size + (0 if contender.kind == "sas" else len(header))
        if size != expected_size:
            raise AssertionError(f"{contender.name}: {size} bytes landed, {expected_size} expected")
        if _range(s3, bucket, key, f"bytes=0-{PROBE - 1}") != expected_head:
            raise AssertionError(f"{contender.name}: the first {PROBE} bytes differ")
        if _range(s3, bucket, key, f"bytes=-{PROBE}") != staged.tail:
            raise AssertionError(f"{contender.name}: the last {PROBE} bytes differ")
        checks.append(f"size {size} ok, head+tail ok")
    else:
        head = zlib.decompressobj(wbits=31).decompress(_range(s3, bucket, key, f"bytes=0-{PROBE - 1}"))
        expected = (header + staged.head)[: len(head)]
        if not head or head[: len(expected)] != expected:
            raise AssertionError(f"{contender.name}: the decompressed head differs")
        trailer = _range(s3, bucket, key, "bytes=-8")
        crc, isize = int.from_bytes(trailer[:4], "little"), int.from_bytes(trailer[4:], "little")
        total = len(header) + staged.size
        if crc != staged.crc_with_header or isize != total % (1 << 32):
            raise AssertionError(f"{contender.name}: gzip trailer CRC/length do not match the data")
        checks.append(f"gzip {size} B ({size / total:.0%}), head ok, CRC-32+length ok")
    if contender.kind == "ours":
        if outcome.get("rows") != staged.rows or outcome.get("bytesRead") != staged.size:
            raise AssertionError(f"{contender.name}: reported {outcome.get('rows')} rows / "
                                 f"{outcome.get('bytesRead')} bytes, {staged.rows} / {staged.size} expected")
        checks.append(f"rows {staged.rows} ok")
    return checks


# -- the report -------------------------------------------------------------------------------------

def machine() -> str:
    model = ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return (f"{os.cpu_count()} CPUs ({model or platform.processor() or platform.machine()}), "
            f"{psutil.virtual_memory().total / GIB:.1f} GiB RAM, {platform.system()} {platform.release()}, "
            f"Python {platform.python_version()}, boto3 {boto3.__version__}, moto {moto.__version__}")


def loadavg() -> str:
    return ", ".join(f"{value:.2f}" for value in os.getloadavg())


def code_revision() -> str:
    """The commit measured (``BENCH_CODE_REV`` when run from an exported snapshot without .git)."""
    if os.environ.get("BENCH_CODE_REV"):
        return f"{os.environ['BENCH_CODE_REV']} (a clean export of that commit)"
    try:
        rev = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True,
                             text=True, check=True).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--", "transforms", "handler"], cwd=ROOT,
                               capture_output=True, text=True, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"
    return f"{rev}{' with uncommitted changes to transforms/ or handler/' if dirty else ''}"


def _disk(value: int | None) -> str:
    if value is None:
        return "n/a"
    return "0" if value == 0 else f"{value:,}"


@dataclass
class Summary:
    """One contender at one size over its rounds: the fastest round's time, the worst memory and disk."""

    contender: Contender
    size: str
    data_bytes: int
    best: Run  # the round with the least wall time (the least disturbed by anything else on the machine)
    walls: list[float]
    peak_rss_mb: float  # the highest of all rounds
    disk_bytes: int | None  # the highest of all rounds

    @property
    def wall(self) -> float:
        return self.best.wall

    @property
    def mb_per_s(self) -> float:
        return self.best.mb_per_s


def summarize(runs: list[Run]) -> list[Summary]:
    groups: dict[tuple[str, str], list[Run]] = {}
    for run in runs:
        groups.setdefault((run.size, run.contender.label), []).append(run)
    summaries = []
    for group in groups.values():
        disks = [run.disk_bytes for run in group if run.disk_bytes is not None]
        summaries.append(Summary(group[0].contender, group[0].size, group[0].data_bytes,
                                 min(group, key=lambda run: run.wall), [run.wall for run in group],
                                 max(run.peak_rss_mb for run in group), max(disks) if disks else None))
    return summaries


def table(summaries: list[Summary]) -> str:
    baselines = {item.size: item for item in summaries if item.contender.kind == "sas"}
    rows = ["| contender | size | wall s | CPU s | peak RSS MB | disk bytes written | MB/s "
            "| wall vs baseline |", "|---|---|---:|---:|---:|---:|---:|---:|"]
    for item in summaries:
        base = baselines.get(item.size)
        ratio = f"{item.wall / base.wall:.2f}x" if base else "n/a"
        rounds = f" (best of {len(item.walls)})" if len(item.walls) > 1 else ""
        rows.append(f"| {item.contender.name} | {item.size} ({item.data_bytes / GIB:.2f} GiB) "
                    f"| {item.wall:.1f}{rounds} | {item.best.cpu:.1f} | {item.peak_rss_mb:.0f} "
                    f"| {_disk(item.disk_bytes)} | {item.mb_per_s:.0f} | {ratio} |")
    return "\n".join(rows)


def details(runs: list[Run]) -> str:
    rows = ["| contender | size | round | wall s | CPU s | peak RSS MB | RSS at start MB "
            "| sampled peak RSS MB | process wall s | process CPU s | download to /tmp s "
            "| CompleteMultipartUpload s | CPU s by thread | server CPU s | server peak RSS MB | checks |",
            "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|---:|---:|---|"]
    for run in runs:
        download = run.phases.get("download to /tmp")
        rows.append(f"| {run.contender.name} | {run.size} | {run.round} | {run.wall:.1f} | {run.cpu:.1f} "
                    f"| {run.peak_rss_mb:.0f} | {run.rss_before_mb:.0f} | {run.sampled_rss_mb:.0f} "
                    f"| {run.process_wall:.1f} | {run.process_cpu:.1f} "
                    f"| {'-' if download is None else f'{download:.1f}'} "
                    f"| {run.phases.get('CompleteMultipartUpload', 0.0):.1f} | {by_thread(run)} "
                    f"| {run.server_cpu:.1f} "
                    f"| {run.server_peak_rss_mb:.0f} | {'; '.join(run.checks)} |")
    return "\n".join(rows)


def by_thread(run: Run) -> str:
    groups = sorted(run.cpu_by_thread.items(), key=lambda item: -item[1])
    return ", ".join(f"{name} {seconds:.1f}" for name, seconds in groups if seconds >= 0.05) or "-"


def verdict(summaries: list[Summary]) -> list[str]:
    ours = [item for item in summaries if item.contender.kind == "ours"]
    baselines = {item.size: item for item in summaries if item.contender.kind == "sas"}
    lines = []
    for item in ours:
        base = baselines.get(item.size)
        if base:
            ok = item.wall <= base.wall
            lines.append(f"- wall time no more than the baseline's, {item.contender.name} @ {item.size}: "
                         f"{item.wall:.1f} s vs {base.wall:.1f} s: {'met' if ok else 'MISSED'}")
    for item in ours:
        lines.append(f"- peak RSS under 300 MB, {item.contender.name} @ {item.size}: "
                     f"{item.peak_rss_mb:.0f} MB: {'met' if item.peak_rss_mb < 300 else 'MISSED'}")
    for label in dict.fromkeys(item.contender.label for item in ours):
        pair = {item.size: item for item in ours if item.contender.label == label}
        if "1x" in pair and "4x" in pair:
            one, four = pair["1x"].peak_rss_mb, pair["4x"].peak_rss_mb
            verdict_text = "met" if abs(four - one) <= max(0.1 * one, 20) else "MISSED"
            lines.append(f"- the same peak RSS at 1x and 4x (within 10% or 20 MB), "
                         f"{pair['1x'].contender.name}: {one:.0f} vs {four:.0f} MB: {verdict_text}")
    for item in ours:
        lines.append(f"- zero bytes written to disk, {item.contender.name} @ {item.size}: "
                     f"{_disk(item.disk_bytes)}: {'met' if item.disk_bytes == 0 else 'MISSED'}")
    return lines


def report(runs: list[Run], staged: dict[str, Staged], started: dt.datetime, seconds: float,
           gib: float, notes: list[str], load: tuple[str, str], patched: bool) -> str:
    sizes = ", ".join(f"{label} = {s.size:,} bytes, {s.rows:,} rows" for label, s in staged.items())
    return "\n".join([
        BEGIN,
        "## Transfer: our connector against SAS's (`make bench`)",
        "",
        "Our connector against the baseline SAS ships (download the presigned URL to a file under /tmp "
        "in 8 KiB chunks, then boto3 `upload_file` with its defaults), side by side in one run on the same "
        "local S3 (one moto server, its own process, on 127.0.0.1).",
        "",
        f"- Command: `make bench`{'' if gib == 1 else f' with `BENCH_GB={gib:g}`'} "
        f"(runs `.venv/bin/python -m bench.run`; took {seconds / 60:.1f} min)",
        f"- Date: {started.strftime('%Y-%m-%d %H:%M UTC')}; code: {code_revision()}",
        f"- Machine: {machine()}",
        "- Local S3: " + ("moto's server through `bench/s3server.py`, which removes two of its memory costs "
                          "without changing any answer it gives (a default full-object checksum built from "
                          "two extra copies of the object, which neither contender asks for; objects "
                          "spooled through memory on their way to disk)"
                          if patched else "plain `moto.server` (`BENCH_MOTO_PATCHES=0`)"),
        f"- Data: a generated CI360-like headerless CSV (uuid identity_id, integer external_id, email, names "
        f"and cities quoted when they hold a comma or a quote, dates, datetime, decimal, boolean; "
        f"JSON metadata layout): {sizes}",
        "",
        table(summarize(runs)),
        "",
        "Wall and CPU are the transfer itself, measured inside each contender's own fresh process "
        "(webhook in to response out; imports and clients made before the clock starts, as in a warm "
        "Lambda). Where a contender ran more than once (interleaved with the others), wall is its "
        "fastest round (the least disturbed by anything else on the machine) and CPU that round's; peak "
        "RSS and disk bytes are the highest of all its rounds; every round is in Details. "
        "Peak RSS is that process's high-water mark (`VmHWM` in /proc/self/status; not `ru_maxrss`, which "
        "Linux seeds with the parent's RSS at fork) over its whole life, imports included, in 10^6 bytes. "
        "Disk bytes written is its `/proc/self/io` `write_bytes` (pages it dirtied on a block device, all "
        "threads), read just before it exits; an unmeasured process imports every contender's code first, "
        "so that the access-time updates of a freshly written checkout are charged to none of them. "
        "MB/s is the data file's size (10^6 bytes) over wall time. "
        "Each result was checked after the run (size, first and last 64 KiB, row count; gzip: the "
        "trailer's CRC-32 and length) and deleted.",
        "",
        "### Targets",
        "",
        *verdict(summarize(runs)),
        *notes,
        "",
        "### Caveats",
        "",
        "- The local S3 runs on the same 2 cores as the contender (its CPU is in Details), so these MB/s are "
        "moto's pace, not S3's. moto's CompleteMultipartUpload copies the whole object in memory and then to "
        "disk, which costs every contender several seconds per GB (Details); S3 completes in about a second.",
        "- Other work on the machine shows in the load averages below; running the close race (baseline "
        "and passthrough) twice and keeping each one's fastest round reduces that noise but does not remove "
        "it.",
        "- gzip is bound by deflate's CPU (the gzip threads' share under CPU by thread): blocks are deflated "
        "on every core, so its wall time falls with the cores it gets; here it shares 2 with moto.",
        "",
        "### Details",
        "",
        "Process wall/CPU include interpreter start, imports and client creation. Sampled RSS is psutil "
        "every 50 ms (a cross-check of VmHWM). Download to /tmp is the baseline's first step; "
        "CompleteMultipartUpload is the time the contender waited on that one call, i.e. moto assembling "
        "the object from its parts in memory (a local-S3 cost, as large for every contender). CPU by thread "
        "splits the contender's CPU between its threads (MainThread: download, header, record counting, "
        "buffering; s3-part / ThreadPoolExecutor: part uploads, i.e. signing, checksums, sending; gzip: "
        "deflate), sampled from /proc/self/task every 0.2 s. The server "
        "is moto on the same 2 cores: its CPU competes with the contender's, for every contender alike. "
        f"Machine load average (1, 5, 15 min) at start: {load[0]}; at the end: {load[1]}. "
        "Each contender's output is kept in `.bench/logs/`; `BENCH_PROFILE=1` adds a cProfile of its "
        "main thread there.",
        "",
        details(runs),
        END,
    ])


def write_report(section: str) -> None:
    """Put this benchmark's section into BENCHMARKS.md, keeping what others wrote there.

    The section lives between two markers; without them it goes right under the file's title.
    """
    text = REPORT.read_text() if REPORT.exists() else "# Benchmarks\n"
    if BEGIN in text and END in text:
        head, rest = text.split(BEGIN, 1)
        text = head + section + rest.split(END, 1)[1]
    else:
        lines = text.splitlines(keepends=True)
        at = 1 if lines and lines[0].startswith("# ") else 0  # under the title, if there is one
        rest = "".join(lines[at:]).lstrip("\n")
        text = "".join(lines[:at]) + "\n" + section + ("\n\n" + rest if rest else "\n")
    REPORT.write_text(text)


# -- main -------------------------------------------------------------------------------------------

def start_server(patched: bool = True, timeout: float = 30.0) -> MotoServer:
    """One moto server in its own process: devstack.localstack's, started through bench.s3server.

    ``bench.s3server`` is moto's server with two memory fixes that change none of its answers (see there);
    ``BENCH_MOTO_PATCHES=0`` runs plain ``moto.server`` instead, whose memory use rules out the 4x line.
    glibc is told to give large freed buffers back at once (moto's request bodies and whole objects would
    otherwise stay in its heap and the server's RSS would only grow from run to run). Both touch the server
    only, which every contender shares; the contenders run with default settings.
    """
    env = {**os.environ, "MALLOC_MMAP_THRESHOLD_": str(1 << 20)}
    module = "bench.s3server" if patched else "moto.server"
    return MotoServer.start(timeout, module=module, env=env, cwd=ROOT)  # on port 0: nothing to race for


def warm_up(server: MotoServer) -> None:
    """Import every contender's code once, unmeasured, before the first measured process does.

    Reading a source file for the first time after it was written updates its access time (relatime), and
    ext4 charges the inode-table block that dirties to the reading process's write_bytes: about 50-100 KB
    of "disk writes" that are no data of ours, seen by whichever contender imports a fresh checkout first.
    """
    env = {**os.environ, **server.environ(), "PYTHONDONTWRITEBYTECODE": "1", "PYTHONPATH": str(ROOT)}
    code = "import bench.contender, boto3, urllib3, handler.webhook"
    subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, check=True)


def stage_guarded(s3: Any, bucket: str, label: str, paths: list[Path], server: MotoServer) -> Staged:
    sampler = Sampler(None, server.process.pid, victim=server.process.pid)
    sampler.start()
    try:
        staged = stage(s3, bucket, label, paths)
    except Exception as exc:
        if sampler.tripped:
            raise OutOfMemory(f"staging {label} stopped: the machine ran low on memory") from exc
        raise
    finally:
        sampler.stop.set()
        sampler.join()
    print(f"staged {label}: {staged.size:,} bytes, {staged.rows:,} rows in {staged.stage_seconds:.0f} s "
          f"(server peak RSS {sampler.server_peak / MB:.0f} MB)", flush=True)
    return staged


def main() -> int:
    gib = float(os.environ.get("BENCH_GB", "1") or 1)
    with_4x = os.environ.get("BENCH_4X", "1").strip() not in ("0", "false", "no")
    one_x, four_x = (
        [name.strip() for name in os.environ.get(f"BENCH_{size}_CONTENDERS", default).split(",")
         if name.strip()] for size, default in (("1X", "sas,csv,gzip,sas,csv"), ("4X", "sas,csv,gzip")))
    started_at = dt.datetime.now(dt.UTC)
    load_at_start = loadavg()
    started = time.monotonic()
    segment_bytes = int(gib * GIB)
    paths = segment_files(4 if with_4x else 1, segment_bytes)
    shutil.rmtree(TMP_DIR, ignore_errors=True)
    TMP_DIR.mkdir(parents=True)
    patched = os.environ.get("BENCH_MOTO_PATCHES", "1").strip() not in ("0", "false", "no")
    server = start_server(patched)
    runs: list[Run] = []
    staged_by_size: dict[str, Staged] = {}
    notes: list[str] = []
    try:
        os.environ.update(server.environ())
        s3 = s3_client()
        staging, target = f"ci360-staging-{uuid.uuid4().hex[:8]}", f"target-{uuid.uuid4().hex[:8]}"
        s3.create_bucket(Bucket=staging)
        s3.create_bucket(Bucket=target)
        warm_up(server)
        plan = [("1x", paths[:1], one_x)]
        if with_4x:
            plan.append(("4x", paths, four_x))
        for label, files, names in plan:
            try:
                staged = stage_guarded(s3, staging, label, files, server)
                staged_by_size[label] = staged
                for name in names:
                    done = sum(1 for run in runs if run.size == label and run.contender.label == name)
                    runs.append(run_contender(CONTENDERS[name], staged, target, server, done + 1))
                unstage(s3, staging, staged)
            except OutOfMemory as exc:
                notes.append(f"- {exc}; the runs after it were not made.")
                print(f"!! {exc}", flush=True)
                break
    finally:
        server.stop()
        shutil.rmtree(TMP_DIR, ignore_errors=True)
    load = (load_at_start, loadavg())
    text = report(runs, staged_by_size, started_at, time.monotonic() - started, gib, notes, load, patched)
    write_report(text)
    print()
    print(text)
    return 1 if notes else 0


if __name__ == "__main__":
    sys.exit(main())
