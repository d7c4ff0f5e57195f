"""`make bench`, first step: every format against SAS's connector, where Lambda runs it.

Side by side in one run: SAS's connector (bench/contender.py: one GET to /tmp, then ``upload_file``)
and ours for ``.csv``, ``.csv.gz``, ``.parquet`` and ``.jsonl``, at 1x and 4x, with S3's
per-connection caps on (S3 to and from Lambda: each download connection at ``BENCH_CAP_MBPS``, each
upload connection at ``BENCH_SINK_CAP_MBPS``, both 60 MB/s by default) and off, on 1 and 2 cores
(``taskset``). Each run is a fresh ``python -m bench.contender`` process: its wall and CPU time around
the transfer, its VmHWM, its disk bytes written. Every output is verified (size, rows, CRC-32 against
the connector's reported checksum and the data's own) and deleted. Each run is also given the limit it
is bound by: the longest of its floors (the bytes each way over its connections times the cap, its CPU
seconds over its cores).

- Source: bench/rangeserver.py (ranges, ETag, If-Match, paced per connection), one process.
- Target: bench/sinkserver.py (the S3 calls an upload makes, parts straight to files, in memory where
  the machine has a tmpfs, paced per connection), one process capped and one not.

Settings (environment): ``BENCH_RANGED_MB`` the 1x size in MiB (default 128; 4x is four times it),
``BENCH_RANGED_4X=0`` skips 4x, ``BENCH_CAP_MBPS`` (60), ``BENCH_SINK_CAP_MBPS`` (the same as
``BENCH_CAP_MBPS``), ``BENCH_CORES`` ("1,2"), ``BENCH_CAPS`` ("on,off"), ``BENCH_ROUNDS`` (1: each
contender once; more: the contenders in turn, round after round, and the median reported),
``BENCH_RANGED_CONTENDERS`` ("sas,csv,gzip,parquet,orc,jsonl"). A contender of ours may carry settings
and a commit: ``csv:upload_concurrency=4`` runs ``.csv`` with that deployment setting, ``parquet@fe51ba3``
runs ``.parquet`` with transforms/ and handler/ as they were at that commit (``git archive`` into
.bench/trees/), so that a change is measured side by side with what it replaces.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import io
import json
import os
import re
import shutil
import subprocess
import sys
import time
import uuid
import zlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pyarrow.orc as paorc
import pyarrow.parquet as pq

from bench import data
from bench.contender import RESULT_MARK
from bench.report import write_section
from bench.run import MB, ROOT, WORK, Sampler, code_revision, loadavg, machine, segment_files
from bench.sinkserver import delete_object, object_parts
from devstack.localstack import LOCAL_CREDENTIALS, free_ports

# Where the local S3 stores the parts it receives: in memory (tmpfs) where the machine has one. S3's
# storing is not the function's work, but this sink runs on the contenders' cores: writing to this VM's
# disk cost it 1.3 s of kernel CPU per GB received (3.3 s in a 4x .jsonl run, 2 GB), 0.6 s in tmpfs.
_SHM = Path("/dev/shm")
# One directory per checkout: another checkout's bench on this shared machine keeps its own.
SINK_DIR = ((_SHM if _SHM.is_dir() and os.access(_SHM, os.W_OK) else WORK)
            / f"ci360-bench-sink-{hashlib.sha256(str(ROOT).encode()).hexdigest()[:12]}")
TMP_DIR = WORK / "tmp"
LOG_DIR = WORK / "logs"
BEGIN = "<!-- bench/ranged.py writes from here: make bench -->"
END = "<!-- bench/ranged.py writes up to here -->"
BUCKET = "bench-target"
MIB = 1 << 20
TARGET_RSS_MB = 400


SAS_UPLOAD_CONNECTIONS = 10  # boto3's TransferConfig max_concurrency, which upload_file uses
TREES = WORK / "trees"
# Thread groups that are one thread each (bench.contender's names), whose CPU seconds are a floor too.
SERIAL_THREADS = ("MainThread", "columnar-write")


@dataclass(frozen=True)
class Contender:
    label: str
    kind: str  # bench.contender's CONTENDERS key
    suffix: str
    name: str
    settings: tuple[tuple[str, str], ...] = ()  # deployment settings given to ours (environment)
    commit: str | None = None  # transforms/ and handler/ as at this commit; None: the working tree

    def connections(self) -> tuple[int, int]:
        """(download, upload) connections: what the bound of a capped run is computed from."""
        if self.kind == "sas":
            return 1, SAS_UPLOAD_CONNECTIONS
        from transforms.settings import Settings

        env = {"s3_bucket_name": BUCKET, **dict(self.settings)}
        settings = Settings.from_env(env)
        return settings.download_connections, settings.upload_concurrency


def contender(spec: str) -> Contender:
    """``name[@commit][:setting=value[;setting=value]]``: see the module docstring."""
    head, _, given = spec.partition(":")
    name, _, commit = head.partition("@")
    base = CONTENDERS[name]
    settings = tuple(tuple(pair.split("=", 1)) for pair in given.split(";") if pair.strip())
    if not settings and not commit:
        return base
    extra = "".join(f" {k}={v}" for k, v in settings) + (f" (code {commit})" if commit else "")
    return Contender(spec, base.kind, base.suffix, base.name + extra, settings,  # type: ignore[arg-type]
                     commit or None)


def code_tree(commit: str) -> Path:
    """transforms/ and handler/ as they were at ``commit``, exported once under .bench/trees/."""
    tree = TREES / commit
    if not (tree / "transforms").is_dir():
        tree.mkdir(parents=True, exist_ok=True)
        archive = subprocess.run(["git", "archive", commit, "transforms", "handler"], cwd=ROOT,
                                 check=True, capture_output=True).stdout
        subprocess.run(["tar", "-x", "-C", str(tree)], input=archive, check=True)
    return tree


CONTENDERS = {
    "sas": Contender("sas", "sas", ".csv", "SAS connector (one GET to /tmp, upload_file)"),
    "csv": Contender("csv", "ours", ".csv", "ours .csv"),
    "gzip": Contender("gzip", "ours", ".csv.gz", "ours .csv.gz"),
    "parquet": Contender("parquet", "ours", ".parquet", "ours .parquet"),
    "jsonl": Contender("jsonl", "ours", ".jsonl", "ours .jsonl"),
    "orc": Contender("orc", "ours", ".orc", "ours .orc"),  # not in the default list: BENCH_RANGED_CONTENDERS
}


@dataclass
class Expected:
    size: int
    rows: int
    crc: int  # of the data file
    crc_with_header: int
    first_id: str
    last_id: str


@dataclass
class Run:
    contender: Contender
    size: str
    cap: str
    cores: int
    data_bytes: int
    wall: float = 0.0
    cpu: float = 0.0
    peak_rss_mb: float = 0.0
    disk_bytes: int | None = None
    checks: str = ""
    threads: dict[str, float] = field(default_factory=dict)
    out_bytes: int = 0  # the object that landed
    round: int = 1
    cap_bytes: tuple[int, int] = (0, 0)  # (download, upload) bytes a second a connection; 0: no cap
    load: str = ""  # the machine's load average just before the run

    @property
    def mb_per_s(self) -> float:
        return self.data_bytes / MB / self.wall if self.wall else 0.0

    @property
    def cpu_per_gb(self) -> float:
        return self.cpu / (self.data_bytes / 1e9)

    def floors(self) -> dict[str, float]:
        """The least wall time each limit allows: the bytes over the capped connections each way, the
        CPU seconds over the cores. SAS's upload starts when its download ends, so its two add up."""
        down_conns, up_conns = self.contender.connections()
        parts = max(1, -(-self.out_bytes // (8 * MIB)))
        down_cap, up_cap = self.cap_bytes
        floors = {"CPU": self.cpu / self.cores}
        serial = {name: cpu for name, cpu in self.threads.items() if name in SERIAL_THREADS}
        if serial:  # one thread's work cannot spread over the cores
            name, cpu = max(serial.items(), key=lambda kv: kv[1])
            floors[f"one thread ({name})"] = cpu
        if down_cap:
            floors["download"] = self.data_bytes / (down_conns * down_cap)
        if up_cap:
            floors["upload"] = self.out_bytes / (min(up_conns, parts) * up_cap)
        if self.contender.kind == "sas" and down_cap and up_cap:
            floors["download then upload"] = floors.pop("download") + floors.pop("upload")
        return floors

    @property
    def bound(self) -> str:
        """The limit with the longest floor, and how near the wall came to it."""
        name, floor = max(self.floors().items(), key=lambda kv: kv[1])
        return f"{name} ({floor:.1f} s, {floor / self.wall:.0%} of wall)"


def expected_for(paths: list[Path]) -> Expected:
    crc, crc_h, size, rows = 0, zlib.crc32(data.header_line()), 0, 0
    first = tail = b""
    for path in paths:
        with open(path, "rb") as handle:
            while chunk := handle.read(8 * MIB):
                if not first:
                    first = chunk[: chunk.index(b",")]
                crc, crc_h = zlib.crc32(chunk, crc), zlib.crc32(chunk, crc_h)
                size += len(chunk)
                rows += chunk.count(b"\n")  # no generated field holds a newline
                tail = (tail + chunk)[-64 * 1024:]
    last_line = tail.rstrip(b"\n").rsplit(b"\n", 1)[-1]
    return Expected(size, rows, crc, crc_h, first.decode(), last_line[: last_line.index(b",")].decode())


def _object_reader(parts: list[Path]) -> io.BufferedReader:
    class Parts(io.RawIOBase):
        def __init__(self) -> None:
            self._files = [open(p, "rb") for p in parts]  # noqa: SIM115 (closed as read)

        def readable(self) -> bool:
            return True

        def readinto(self, buffer: Any) -> int:
            while self._files:
                n = self._files[0].readinto(buffer)
                if n:
                    return n
                self._files.pop(0).close()
            return 0

    return io.BufferedReader(Parts(), 8 * MIB)


def verify(contender: Contender, key: str, outcome: dict[str, Any], want: Expected) -> tuple[str, int]:
    """The checks passed (raises on any failure) and the size of the object that landed."""
    if outcome.get("statusCode") != 200:
        raise AssertionError(f"{contender.name}: response {json.dumps(outcome)[:2000]}")
    parts = object_parts(SINK_DIR, BUCKET, key)
    if parts is None:
        raise AssertionError(f"{contender.name}: nothing landed at {key}")
    crc, size, lines = 0, 0, 0
    first_line, last_block = b"", b""
    with _object_reader(parts) as handle:
        while chunk := handle.read(8 * MIB):
            crc, size = zlib.crc32(chunk, crc), size + len(chunk)
            if contender.suffix == ".jsonl":
                lines += chunk.count(b"\n")
                first_line = first_line or chunk[: chunk.index(b"\n")]
                last_block = (last_block + chunk)[-64 * 1024:]
    checks = []
    if contender.kind == "ours":
        reported = int.from_bytes(base64.b64decode(outcome["checksum"]["value"]), "big")
        if reported != crc or outcome.get("bytesWritten") != size:
            raise AssertionError(f"{contender.name}: the object differs from what the connector reported")
        if outcome.get("rows") != want.rows or outcome.get("bytesRead") != want.size:
            raise AssertionError(f"{contender.name}: reported {outcome.get('rows')} rows, "
                                 f"{outcome.get('bytesRead')} bytes; {want.rows}, {want.size} expected")
        checks.append(f"CRC-32 = reported, rows {want.rows} reported")
    if contender.suffix == ".csv":
        header = b"" if contender.kind == "sas" else data.header_line()
        want_crc = want.crc if contender.kind == "sas" else want.crc_with_header
        if size != want.size + len(header) or crc != want_crc:
            raise AssertionError(f"{contender.name}: size or CRC-32 of the CSV differ from the data's")
        checks.append("size + CRC-32 = data's")
    elif contender.suffix == ".csv.gz":
        unzip, gz_crc, gz_size = zlib.decompressobj(wbits=31), 0, 0
        with _object_reader(parts) as handle:
            while chunk := handle.read(8 * MIB):
                plain = unzip.decompress(chunk)
                gz_crc, gz_size = zlib.crc32(plain, gz_crc), gz_size + len(plain)
        if gz_crc != want.crc_with_header or gz_size != want.size + len(data.header_line()):
            raise AssertionError(f"{contender.name}: the decompressed object differs from the data")
        checks.append(f"gunzipped CRC-32 = data's ({size / gz_size:.0%})")
    elif contender.suffix == ".parquet":
        with _object_reader(parts) as handle:
            blob = handle.read()
        meta = pq.ParquetFile(io.BytesIO(blob))
        ids = [meta.read_row_group(0, columns=["identity_id"]).column(0)[0].as_py(),
               meta.read_row_group(meta.num_row_groups - 1, columns=["identity_id"]).column(0)[-1].as_py()]
        if meta.metadata.num_rows != want.rows or ids != [want.first_id, want.last_id]:
            raise AssertionError(f"{contender.name}: {meta.metadata.num_rows} rows, ids {ids}")
        checks.append(f"{meta.metadata.num_rows} rows in {meta.num_row_groups} row groups, first/last id ok")
    elif contender.suffix == ".orc":
        with _object_reader(parts) as handle:
            orc_file = paorc.ORCFile(io.BytesIO(handle.read()))
        first, last = orc_file.read_stripe(0, ["identity_id"]), orc_file.read_stripe(orc_file.nstripes - 1,
                                                                                      ["identity_id"])
        ids = [first.column(0)[0].as_py(), last.column(0)[-1].as_py()]
        if orc_file.nrows != want.rows or ids != [want.first_id, want.last_id]:
            raise AssertionError(f"{contender.name}: {orc_file.nrows} rows, ids {ids}")
        checks.append(f"{orc_file.nrows} rows in {orc_file.nstripes} stripes, first/last id ok")
    elif contender.suffix == ".jsonl":
        last_line = last_block.rstrip(b"\n").rsplit(b"\n", 1)[-1]
        ids = [json.loads(first_line)["identity_id"], json.loads(last_line)["identity_id"]]
        if lines != want.rows or ids != [want.first_id, want.last_id]:
            raise AssertionError(f"{contender.name}: {lines} lines, ids {ids}")
        checks.append(f"{lines} lines, first/last id ok")
    return "; ".join(checks), size


class Servers:
    """The source, and one sink for each upload cap (0: none), all storing into SINK_DIR."""

    def __init__(self, paths: list[Path], label: str, sink_caps: list[int]) -> None:
        metadata = WORK / "metadata.json"
        metadata.write_bytes(data.metadata_json())
        ports = free_ports(1 + len(sink_caps))
        self.source_port = ports[0]
        self.source = subprocess.Popen([sys.executable, "-m", "bench.rangeserver", "--port",
                                        str(self.source_port), "--metadata", str(metadata),
                                        *map(str, paths)], cwd=ROOT, stdout=subprocess.PIPE)
        self.sinks = {cap: (port, subprocess.Popen([sys.executable, "-m", "bench.sinkserver", "--port",
                                                    str(port), "--dir", str(SINK_DIR), "--cap", str(cap)],
                                                   cwd=ROOT, stdout=subprocess.PIPE))
                      for cap, port in zip(sink_caps, ports[1:], strict=True)}
        for process in (self.source, *(sink for _, sink in self.sinks.values())):
            assert process.stdout is not None and process.stdout.readline() == b"ready\n"
        self.label = label

    def urls(self, cap_bytes: int) -> tuple[str, str]:
        sig = "X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Signature=bench&X-Amz-Expires=21600"
        base = f"http://127.0.0.1:{self.source_port}"
        return f"{base}/data?{sig}&cap={cap_bytes}", f"{base}/metadata?{sig}"

    def stop(self) -> None:
        for process in (self.source, *(sink for _, sink in self.sinks.values())):
            process.terminate()
            process.wait(10)


def run_one(contender: Contender, servers: Servers, want: Expected, size: str, caps: tuple[int, int],
            cores: int, round_: int = 1) -> Run:
    cap_mbps, sink_cap_mbps = caps
    key = f"bench_{size}_{contender.label.partition(':')[0].replace('@', '-')}_{uuid.uuid4().hex[:8]}" \
          f"{contender.suffix}"
    data_url, metadata_url = servers.urls(cap_mbps * MB)
    spec = {"contender": contender.kind, "data_url": data_url, "metadata_url": metadata_url,
            "bucket": BUCKET, "key": key, "tmpdir": str(TMP_DIR)}
    env = {name: value for name, value in os.environ.items() if not name.islower()}
    sink_port, sink = servers.sinks[sink_cap_mbps * MB]
    endpoint = f"http://127.0.0.1:{sink_port}"
    code = f"{code_tree(contender.commit)}{os.pathsep}{ROOT}" if contender.commit else str(ROOT)
    env.update({**LOCAL_CREDENTIALS, "AWS_ENDPOINT_URL": endpoint, "AWS_ENDPOINT_URL_S3": endpoint,
                "s3_bucket_name": BUCKET, "source_host_allowlist": "http://127.0.0.1:*",
                "BENCH_SPEC": json.dumps(spec), "TMPDIR": str(TMP_DIR), "PYTHONDONTWRITEBYTECODE": "1",
                "PYTHONPATH": code, **dict(contender.settings)})
    cpus = ",".join(str(c) for c in sorted(os.sched_getaffinity(0))[:cores])
    load = loadavg()
    # ``-m`` puts the working directory first on sys.path, before PYTHONPATH: an older commit's tree is
    # the working directory, or the working tree's transforms/ would shadow it (bench/ comes from ROOT).
    cwd = code_tree(contender.commit) if contender.commit else ROOT
    child = subprocess.Popen(["taskset", "-c", cpus, sys.executable, "-m", "bench.contender"], cwd=cwd,
                             env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    sampler = Sampler(child.pid, sink.pid, victim=child.pid)
    sampler.start()
    assert child.stdout is not None
    output = child.stdout.read().decode("utf-8", "replace")
    child.wait()
    sampler.stop.set()
    sampler.join()
    cap = _cap_label(cap_mbps, sink_cap_mbps)
    LOG_DIR.mkdir(parents=True, exist_ok=True)
    log_name = re.sub(r"[^\w.=@-]+", "_", f"ranged-{size}-{contender.label}-cap{cap_mbps}-{sink_cap_mbps}-"
                                          f"{cores}cpu-r{round_}.log")
    (LOG_DIR / log_name).write_text(output)
    lines = [line for line in output.splitlines() if line.startswith(RESULT_MARK)]
    if child.returncode != 0 or not lines:
        raise RuntimeError(f"{contender.name} {size} failed (exit {child.returncode}):\n{output[-4000:]}")
    result = json.loads(lines[-1][len(RESULT_MARK):])
    run = Run(contender, size, cap, cores, want.size, wall=result["wall"], cpu=result["cpu"],
              peak_rss_mb=(result["peak_rss"] or sampler.child_peak) / MB, disk_bytes=result["write_bytes"],
              threads=result.get("cpu_by_thread", {}), round=round_,
              cap_bytes=(cap_mbps * MB, sink_cap_mbps * MB), load=load)
    run.checks, run.out_bytes = verify(contender, key, result["outcome"], want)
    delete_object(SINK_DIR, BUCKET, key)
    for leftover in TMP_DIR.iterdir():
        leftover.unlink()
    print(f"  r{round_} {size} cap {cap:9} {cores} cpu  {contender.name:45} wall {run.wall:6.1f} s "
          f"{run.mb_per_s:6.0f} MB/s  cpu {run.cpu_per_gb:5.1f} s/GB  VmHWM {run.peak_rss_mb:4.0f} MB  "
          f"disk {run.disk_bytes}  bound by {run.bound}  [{run.checks}]", flush=True)
    return run


def _cap_label(cap_mbps: int, sink_cap_mbps: int) -> str:
    if not cap_mbps and not sink_cap_mbps:
        return "off"
    if cap_mbps == sink_cap_mbps:
        return f"{cap_mbps} MB/s"
    return f"{cap_mbps or 'off'} down, {sink_cap_mbps or 'off'} up"


def median_runs(runs: list[Run]) -> list[Run]:
    """One run per (contender, size, cap, cores): the round with the median wall (the lower middle of
    an even count), its VmHWM raised to the highest of the rounds."""
    groups: dict[tuple[str, str, str, int], list[Run]] = {}
    for run in runs:
        groups.setdefault((run.contender.label, run.size, run.cap, run.cores), []).append(run)
    out = []
    for group in groups.values():
        ordered = sorted(group, key=lambda r: r.wall)
        middle = ordered[(len(ordered) - 1) // 2]
        chosen = Run(**{**middle.__dict__, "peak_rss_mb": max(r.peak_rss_mb for r in group)})
        out.append(chosen)
    return out


def _find(runs: list[Run], label: str, size: str, cap: str, cores: int) -> Run | None:
    return next((r for r in runs if (r.contender.label, r.size, r.cap, r.cores) == (label, size, cap, cores)),
                None)


def _command() -> str:
    """The command as run: the BENCH_* settings given, then the module."""
    given = " ".join(f"{name}={value}" for name, value in sorted(os.environ.items())
                     if name.startswith("BENCH_"))
    return f"{given} .venv/bin/python -m bench.ranged".strip()


def _defaults() -> str:
    """The connector's defaults, from its own settings (what every contender of ours ran with)."""
    from transforms.settings import Settings

    d = Settings(bucket=BUCKET)
    return (f"`download_connections` {d.download_connections} x `download_range_mb` "
            f"{d.download_range_bytes // MIB}, parts of {d.part_size // MIB} MiB x {d.upload_concurrency}, "
            f"gzip level {d.gzip_level}, snappy Parquet, row groups of {d.row_group_bytes // MIB} MiB "
            "of Arrow")


def report(all_runs: list[Run], sizes: dict[str, int], seconds: float, started: dt.datetime, load: str,
           caps: tuple[int, int], rounds: int) -> str:
    runs = median_runs(all_runs)
    cap_mbps, sink_cap_mbps = caps
    stored = "in memory: tmpfs" if SINK_DIR.is_relative_to(_SHM) else "on disk"
    out = [BEGIN, "## Where it runs: every format against SAS's connector (`make bench`, first step)", "",
           "SAS's connector and ours for each format, side by side in one run, as S3 serves Lambda: a "
           "source that serves byte ranges with an ETag and If-Match and paces each connection, and a "
           f"local S3 that only stores parts ({stored}) "
           "and paces each upload connection too (bench/sinkserver.py). "
           f"`cap`: {cap_mbps} MB/s a connection down and {sink_cap_mbps} MB/s a connection up, S3's order "
           "of magnitude to and from Lambda; `off`: loopback's own speed both ways. `taskset` gives each "
           "contender 1 or 2 cores (the servers share the machine's 2).", "",
           f"- Command: `{_command()}` (`make bench`'s first step; took {seconds / 60:.1f} min)",
           f"- Date: {started:%Y-%m-%d %H:%M} UTC; code: {code_revision()}",
           f"- Machine: {machine()}; load average at start {load}, at the end {loadavg()} (shared with "
           "other developers' work: the ratios, measured side by side, are what to read)",
           "- Data: the generated CI360-like CSV (bench/data.py): " + ", ".join(
               f"{label} = {size:,} bytes" for label, size in sizes.items()),
           f"- Ours at its defaults: {_defaults()}.",
           f"- Rounds: {rounds} (every contender in turn, then again; the table gives the run with the "
           "median wall and the highest VmHWM of its rounds; every run is under Details)." if rounds > 1
           else "- Rounds: 1 (each contender once).", "",
           "| size | cap | cores | contender | wall s | MB/s | vs SAS (wall) | CPU s/GB | VmHWM MB "
           "| out MB | bound by (its floor, share of wall) |",
           "|---|---|---:|---|---:|---:|---:|---:|---:|---:|---|"]
    for run in runs:
        sas = _find(runs, "sas", run.size, run.cap, run.cores)
        ratio = f"{run.wall / sas.wall:.2f}x" if sas and run.contender.kind != "sas" else ""
        out.append(f"| {run.size} | {run.cap} | {run.cores} | {run.contender.name} | {run.wall:.1f} | "
                   f"{run.mb_per_s:.0f} | {ratio} | {run.cpu_per_gb:.1f} | {run.peak_rss_mb:.0f} | "
                   f"{run.out_bytes / MB:,.0f} | {run.bound} |")
    out += ["", "`vs SAS (wall)` is our wall time over SAS's at the same size, cap and cores, as issue 21's "
            "targets are put (below 1: ours is faster; 0.25x is four times as fast). CPU s/GB: user + system "
            "seconds of the contender's process per GB of data file. VmHWM: the process's peak RSS over its "
            "whole life (imports included). Out MB: the object that landed. Bound by: the longest of the "
            "run's floors: download (the data file over its connections, each at the cap: ours "
            "`download_connections`, SAS's one GET), upload (the object over its connections at the cap: "
            f"ours `upload_concurrency`, SAS's {SAS_UPLOAD_CONNECTIONS} threads; SAS uploads only once its "
            "download is done, so its floors add up), CPU (its CPU seconds over its cores), one thread "
            "(the CPU seconds of its busiest single thread: that work cannot spread over the cores). "
            "A share well "
            "under 100% means the run waited on something else as well (the other limits, the shared "
            "machine).", "", "### Targets (issue 21)", ""]
    out += targets(runs, cap_mbps, sink_cap_mbps)
    out += ["", "### Details: every run, its checks and CPU by thread", "",
            "| round | size | cap | cores | contender | load before | wall s | CPU s | disk bytes written "
            "| checks | CPU s by thread |", "|---:|---|---|---:|---|---|---:|---:|---:|---|---|"]
    for run in all_runs:
        threads = ", ".join(f"{k} {v:.1f}" for k, v in sorted(run.threads.items(), key=lambda kv: -kv[1])
                            if v >= 0.05)
        disk = f"{run.disk_bytes:,}" if run.disk_bytes is not None else "n/a"
        out.append(f"| {run.round} | {run.size} | {run.cap} | {run.cores} | {run.contender.name} | "
                   f"{run.load} | {run.wall:.1f} | {run.cpu:.1f} | {disk} | {run.checks} | {threads} |")
    out.append(END)
    return "\n".join(out)


def targets(runs: list[Run], cap_mbps: int, sink_cap_mbps: int) -> list[str]:
    lines = []

    def line(what: str, ok: bool | None, figures: str) -> None:
        verdict = "met" if ok else "MISSED" if ok is not None else "not measured"
        lines.append(f"- {what}: {figures}: {verdict}")

    cap = _cap_label(cap_mbps, sink_cap_mbps)
    for cores in (1, 2):
        for label, at_most in (("csv", 0.15), ("gzip", 0.30), ("parquet", 0.25)):
            sas, ours = _find(runs, "sas", "4x", cap, cores), _find(runs, label, "4x", cap, cores)
            if sas and ours:
                line(f"{ours.contender.name} at 4x, cap {cap} both ways, {cores} core(s): at most "
                     f"{at_most:.2f}x SAS's wall", ours.wall / sas.wall <= at_most,
                     f"{ours.wall / sas.wall:.2f}x ({ours.wall:.1f} s vs {sas.wall:.1f} s; "
                     f"bound by {ours.bound})")
        sas, ours = _find(runs, "sas", "4x", "off", cores), _find(runs, "csv", "4x", "off", cores)
        if sas and ours:
            line(f"ours .csv at 4x, uncapped, {cores} core(s): at most 0.80x SAS's wall",
                 ours.wall / sas.wall <= 0.8, f"{ours.wall / sas.wall:.2f}x ({ours.wall:.1f} s vs "
                 f"{sas.wall:.1f} s; bound by {ours.bound})")
    for run in runs:
        if run.contender.label == "jsonl":
            parquet = _find(runs, "parquet", run.size, run.cap, run.cores)
            if parquet:
                line(f"`.jsonl` throughput at least half of Parquet's ({run.size}, cap {run.cap}, "
                     f"{run.cores} core(s))", run.mb_per_s >= parquet.mb_per_s / 2,
                     f"{run.mb_per_s:.0f} vs {parquet.mb_per_s:.0f} MB/s "
                     f"({run.mb_per_s / parquet.mb_per_s:.2f} of it)")
    ours = [r for r in runs if r.contender.kind == "ours"]
    worst = max(ours, key=lambda r: r.peak_rss_mb) if ours else None
    if worst:
        line(f"peak RSS under {TARGET_RSS_MB} MB for every format (the highest of {len(ours)} contenders' "
             f"runs: {worst.contender.name}, {worst.size}, cap {worst.cap}, {worst.cores} core(s))",
             worst.peak_rss_mb < TARGET_RSS_MB, f"{worst.peak_rss_mb:.0f} MB")
    for label in dict.fromkeys(r.contender.label for r in ours):
        ones = [r.peak_rss_mb for r in runs if r.contender.label == label and r.size == "1x"]
        fours = [r.peak_rss_mb for r in runs if r.contender.label == label and r.size == "4x"]
        if ones and fours:
            a, b = max(ones), max(fours)
            name = next(r.contender.name for r in ours if r.contender.label == label)
            line(f"peak RSS flat from 1x to 4x, {name} (within 10% or 20 MB)",
                 b <= max(a * 1.1, a + 20), f"{a:.0f} MB at 1x, {b:.0f} MB at 4x")
    return lines


def write_report(section: str) -> None:
    write_section(BEGIN, END, section)


def main() -> int:
    mib = int(os.environ.get("BENCH_RANGED_MB", "128") or 128)
    with_4x = os.environ.get("BENCH_RANGED_4X", "1").strip() not in ("0", "false", "no")
    cap_mbps = int(os.environ.get("BENCH_CAP_MBPS", "60") or 60)
    sink_cap_mbps = int(os.environ.get("BENCH_SINK_CAP_MBPS", str(cap_mbps)) or 0)
    cores = [int(c) for c in os.environ.get("BENCH_CORES", "1,2").split(",") if c.strip()]
    caps = [(cap_mbps, sink_cap_mbps) if c.strip() == "on" else (0, 0)
            for c in os.environ.get("BENCH_CAPS", "on,off").split(",")]
    rounds = max(1, int(os.environ.get("BENCH_ROUNDS", "1") or 1))
    names = os.environ.get("BENCH_RANGED_CONTENDERS", "sas,csv,gzip,parquet,orc,jsonl")
    contenders = [contender(c.strip()) for c in names.split(",") if c.strip()]
    started_at, load, started = dt.datetime.now(dt.UTC), loadavg(), time.monotonic()
    paths = segment_files(4 if with_4x else 1, mib * MIB)
    shutil.rmtree(SINK_DIR, ignore_errors=True)
    shutil.rmtree(TMP_DIR, ignore_errors=True)
    TMP_DIR.mkdir(parents=True)
    for commit in {c.commit for c in contenders if c.commit}:
        code_tree(commit)
    subprocess.run([sys.executable, "-c", "import bench.contender, boto3, urllib3, handler.webhook, "
                    "transforms.formats.columnar"], cwd=ROOT, check=True,
                   env={**os.environ, "PYTHONDONTWRITEBYTECODE": "1", "PYTHONPATH": str(ROOT)})
    runs: list[Run] = []
    sizes: dict[str, int] = {}
    try:  # the sink's directory may be in memory: never left behind
        for label, files in (("1x", paths[:1]), ("4x", paths)) if with_4x else (("1x", paths[:1]),):
            want = expected_for(files)
            sizes[label] = want.size
            print(f"{label}: {want.size:,} bytes, {want.rows:,} rows", flush=True)
            servers = Servers(files, label, sorted({up * MB for _, up in caps}))
            try:
                for cap in caps:
                    for core_count in cores:
                        for round_ in range(1, rounds + 1):
                            for entry in contenders:
                                runs.append(run_one(entry, servers, want, label, cap, core_count, round_))
            finally:
                servers.stop()
    finally:
        shutil.rmtree(SINK_DIR, ignore_errors=True)
    section = report(runs, sizes, time.monotonic() - started, started_at, load, (cap_mbps, sink_cap_mbps),
                     rounds)
    write_report(section)
    print(section)
    return 0


if __name__ == "__main__":
    sys.exit(main())
