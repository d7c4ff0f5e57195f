"""`make bench`, first step: every format against SAS's connector, where Lambda runs it.

Side by side in one run: SAS's connector (bench/contender.py: one GET to /tmp, then ``upload_file``)
and ours for ``.csv``, ``.csv.gz``, ``.parquet`` and ``.jsonl``, at 1x and 4x, with the source's
per-connection cap on (S3 to Lambda, ``BENCH_CAP_MBPS``, default 60 MB/s) and off, on 1 and 2 cores
(``taskset``). Each run is a fresh ``python -m bench.contender`` process: its wall and CPU time around
the transfer, its VmHWM, its disk bytes written. Every output is verified (size, rows, CRC-32 against
the connector's reported checksum and the data's own) and deleted.

- Source: bench/rangeserver.py (ranges, ETag, If-Match, paced per connection), one process.
- Target: bench/sinkserver.py (the S3 calls an upload makes, parts straight to files), one process.

Settings (environment): ``BENCH_RANGED_MB`` the 1x size in MiB (default 128; 4x is four times it),
``BENCH_RANGED_4X=0`` skips 4x, ``BENCH_CAP_MBPS`` (60), ``BENCH_CORES`` ("1,2"), ``BENCH_CAPS``
("on,off"), ``BENCH_RANGED_CONTENDERS`` ("sas,csv,gzip,parquet,orc,jsonl").
"""

from __future__ import annotations

import base64
import datetime as dt
import io
import json
import os
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
from bench.run import MB, ROOT, WORK, Sampler, code_revision, loadavg, machine, segment_files
from bench.sinkserver import delete_object, object_parts
from devstack.localstack import LOCAL_CREDENTIALS, free_ports

SINK_DIR = WORK / "sink"
TMP_DIR = WORK / "tmp"
LOG_DIR = WORK / "logs"
REPORT = ROOT / "BENCHMARKS.md"
BEGIN = "<!-- bench/ranged.py writes from here: make bench -->"
END = "<!-- bench/ranged.py writes up to here -->"
BUCKET = "bench-target"
MIB = 1 << 20
TARGET_RSS_MB = 400


@dataclass(frozen=True)
class Contender:
    label: str
    kind: str  # bench.contender's CONTENDERS key
    suffix: str
    name: str


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

    @property
    def mb_per_s(self) -> float:
        return self.data_bytes / MB / self.wall if self.wall else 0.0

    @property
    def cpu_per_gb(self) -> float:
        return self.cpu / (self.data_bytes / 1e9)


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


def verify(contender: Contender, key: str, outcome: dict[str, Any], want: Expected) -> str:
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
    return "; ".join(checks)


class Servers:
    def __init__(self, paths: list[Path], label: str) -> None:
        metadata = WORK / "metadata.json"
        metadata.write_bytes(data.metadata_json())
        self.source_port, self.sink_port = free_ports(2)
        self.source = subprocess.Popen([sys.executable, "-m", "bench.rangeserver", "--port",
                                        str(self.source_port), "--metadata", str(metadata),
                                        *map(str, paths)], cwd=ROOT, stdout=subprocess.PIPE)
        self.sink = subprocess.Popen([sys.executable, "-m", "bench.sinkserver", "--port", str(self.sink_port),
                                      "--dir", str(SINK_DIR)], cwd=ROOT, stdout=subprocess.PIPE)
        for process in (self.source, self.sink):
            assert process.stdout is not None and process.stdout.readline() == b"ready\n"
        self.label = label

    def urls(self, cap_bytes: int) -> tuple[str, str]:
        sig = "X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Signature=bench&X-Amz-Expires=21600"
        base = f"http://127.0.0.1:{self.source_port}"
        return f"{base}/data?{sig}&cap={cap_bytes}", f"{base}/metadata?{sig}"

    def stop(self) -> None:
        for process in (self.source, self.sink):
            process.terminate()
            process.wait(10)


def run_one(contender: Contender, servers: Servers, want: Expected, size: str, cap_mbps: int,
            cores: int) -> Run:
    key = f"bench_{size}_{contender.label}_{uuid.uuid4().hex[:8]}{contender.suffix}"
    data_url, metadata_url = servers.urls(cap_mbps * MB)
    spec = {"contender": contender.kind, "data_url": data_url, "metadata_url": metadata_url,
            "bucket": BUCKET, "key": key, "tmpdir": str(TMP_DIR)}
    env = {name: value for name, value in os.environ.items() if not name.islower()}
    endpoint = f"http://127.0.0.1:{servers.sink_port}"
    env.update({**LOCAL_CREDENTIALS, "AWS_ENDPOINT_URL": endpoint, "AWS_ENDPOINT_URL_S3": endpoint,
                "s3_bucket_name": BUCKET, "source_host_allowlist": "http://127.0.0.1:*",
                "BENCH_SPEC": json.dumps(spec), "TMPDIR": str(TMP_DIR), "PYTHONDONTWRITEBYTECODE": "1",
                "PYTHONPATH": str(ROOT)})
    cpus = ",".join(str(c) for c in sorted(os.sched_getaffinity(0))[:cores])
    child = subprocess.Popen(["taskset", "-c", cpus, sys.executable, "-m", "bench.contender"], cwd=ROOT,
                             env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    sampler = Sampler(child.pid, servers.sink.pid, victim=child.pid)
    sampler.start()
    assert child.stdout is not None
    output = child.stdout.read().decode("utf-8", "replace")
    child.wait()
    sampler.stop.set()
    sampler.join()
    cap = f"{cap_mbps} MB/s" if cap_mbps else "off"
    LOG_DIR.mkdir(parents=True, exist_ok=True)
    (LOG_DIR / f"ranged-{size}-{contender.label}-cap{cap_mbps}-{cores}cpu.log").write_text(output)
    lines = [line for line in output.splitlines() if line.startswith(RESULT_MARK)]
    if child.returncode != 0 or not lines:
        raise RuntimeError(f"{contender.name} {size} failed (exit {child.returncode}):\n{output[-4000:]}")
    result = json.loads(lines[-1][len(RESULT_MARK):])
    run = Run(contender, size, cap, cores, want.size, wall=result["wall"], cpu=result["cpu"],
              peak_rss_mb=(result["peak_rss"] or sampler.child_peak) / MB, disk_bytes=result["write_bytes"],
              threads=result.get("cpu_by_thread", {}))
    run.checks = verify(contender, key, result["outcome"], want)
    delete_object(SINK_DIR, BUCKET, key)
    for leftover in TMP_DIR.iterdir():
        leftover.unlink()
    print(f"  {size} cap {cap:9} {cores} cpu  {contender.name:45} wall {run.wall:6.1f} s "
          f"{run.mb_per_s:6.0f} MB/s  cpu {run.cpu_per_gb:5.1f} s/GB  VmHWM {run.peak_rss_mb:4.0f} MB  "
          f"disk {run.disk_bytes}  [{run.checks}]", flush=True)
    return run


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


def report(runs: list[Run], sizes: dict[str, int], seconds: float, started: dt.datetime, load: str,
           cap_mbps: int) -> str:
    out = [BEGIN, "## Where it runs: every format against SAS's connector (`make bench`, first step)", "",
           "SAS's connector and ours for each format, side by side in one run, from a source that serves "
           "byte ranges with an ETag and If-Match and paces each connection (`cap`: "
           f"{cap_mbps} MB/s a connection models S3 to Lambda; `off`: loopback's own speed), into a local "
           "S3 that only stores parts (bench/sinkserver.py: not the bottleneck, unlike moto). `taskset` "
           "gives each contender 1 or 2 cores (the servers share the machine's 2).", "",
           f"- Command: `{_command()}` (`make bench`'s first step; took {seconds / 60:.1f} min)",
           f"- Date: {started:%Y-%m-%d %H:%M} UTC; code: {code_revision()}",
           f"- Machine: {machine()}; load average at start {load}, at the end {loadavg()} (shared with "
           "other developers' work: the ratios, measured side by side, are what to read)",
           "- Data: the generated CI360-like CSV (bench/data.py): " + ", ".join(
               f"{label} = {size:,} bytes" for label, size in sizes.items()),
           f"- Ours at its defaults: {_defaults()}.", "",
           "| size | cap | cores | contender | wall s | MB/s | vs SAS | CPU s/GB | VmHWM MB "
           "| disk bytes written |",
           "|---|---|---:|---|---:|---:|---:|---:|---:|---:|"]
    for run in runs:
        sas = _find(runs, "sas", run.size, run.cap, run.cores)
        ratio = f"{sas.wall / run.wall:.2f}x" if sas and run.contender.label != "sas" else ""
        out.append(f"| {run.size} | {run.cap} | {run.cores} | {run.contender.name} | {run.wall:.1f} | "
                   f"{run.mb_per_s:.0f} | {ratio} | {run.cpu_per_gb:.1f} | {run.peak_rss_mb:.0f} | "
                   f"{run.disk_bytes if run.disk_bytes is not None else 'n/a':,} |")
    out += ["", "`vs SAS` is SAS's wall time over ours at the same size, cap and cores (above 1: ours is "
            "faster). CPU s/GB: user + system seconds of the contender's process per GB of data file. "
            "VmHWM: the process's peak RSS over its whole life (imports included). Disk: its "
            "/proc/self/io write_bytes.", "", "### Targets (issue 12)", ""]
    out += targets(runs, cap_mbps)
    out += ["", "### Checks and CPU by thread", "",
            "| size | cap | cores | contender | checks | CPU s by thread |", "|---|---|---:|---|---|---|"]
    for run in runs:
        threads = ", ".join(f"{k} {v:.1f}" for k, v in sorted(run.threads.items(), key=lambda kv: -kv[1])
                            if v >= 0.05)
        out.append(f"| {run.size} | {run.cap} | {run.cores} | {run.contender.name} | {run.checks} "
                   f"| {threads} |")
    out.append(END)
    return "\n".join(out)


def targets(runs: list[Run], cap_mbps: int) -> list[str]:
    lines = []

    def line(what: str, ok: bool | None, figures: str) -> None:
        verdict = "met" if ok else "MISSED" if ok is not None else "not measured"
        lines.append(f"- {what}: {figures}: {verdict}")

    cap = f"{cap_mbps} MB/s"
    for cores in (1, 2):
        sas, csv = _find(runs, "sas", "4x", cap, cores), _find(runs, "csv", "4x", cap, cores)
        if sas and csv:
            line(f"`.csv` at 4x, capped source, {cores} core(s): at least 4x SAS's speed",
                 sas.wall / csv.wall >= 4,
                 f"{sas.wall / csv.wall:.2f}x ({csv.wall:.1f} s vs {sas.wall:.1f} s)")
    for run in runs:
        if run.contender.label == "jsonl":
            parquet = _find(runs, "parquet", run.size, run.cap, run.cores)
            if parquet:
                line(f"`.jsonl` throughput at least half of Parquet's ({run.size}, cap {run.cap}, "
                     f"{run.cores} core(s))", run.mb_per_s >= parquet.mb_per_s / 2,
                     f"{run.mb_per_s:.0f} vs {parquet.mb_per_s:.0f} MB/s")
    ours = [r for r in runs if r.contender.kind == "ours"]
    worst = max(ours, key=lambda r: r.peak_rss_mb) if ours else None
    if worst:
        line(f"peak RSS under {TARGET_RSS_MB} MB for every format (the highest of {len(ours)} runs: "
             f"{worst.contender.name}, {worst.size}, cap {worst.cap}, {worst.cores} core(s))",
             worst.peak_rss_mb < TARGET_RSS_MB, f"{worst.peak_rss_mb:.0f} MB")
    for label in ("csv", "gzip", "parquet", "jsonl", "orc"):
        ones = [r.peak_rss_mb for r in runs if r.contender.label == label and r.size == "1x"]
        fours = [r.peak_rss_mb for r in runs if r.contender.label == label and r.size == "4x"]
        if ones and fours:
            a, b = max(ones), max(fours)
            line(f"peak RSS flat from 1x to 4x, {CONTENDERS[label].name} (within 10% or 20 MB)",
                 b <= max(a * 1.1, a + 20), f"{a:.0f} MB at 1x, {b:.0f} MB at 4x")
    return lines


def write_report(section: str) -> None:
    text = REPORT.read_text() if REPORT.exists() else "# Benchmarks\n"
    if BEGIN in text and END in text:
        head, rest = text.split(BEGIN, 1)
        text = head + section + rest.split(END, 1)[1]
    else:
        title, _, rest = text.partition("\n")
        text = title + "\n\n" + section + "\n\n" + rest.lstrip("\n")
    REPORT.write_text(text)


def main() -> int:
    mib = int(os.environ.get("BENCH_RANGED_MB", "128") or 128)
    with_4x = os.environ.get("BENCH_RANGED_4X", "1").strip() not in ("0", "false", "no")
    cap_mbps = int(os.environ.get("BENCH_CAP_MBPS", "60") or 60)
    cores = [int(c) for c in os.environ.get("BENCH_CORES", "1,2").split(",") if c.strip()]
    caps = [cap_mbps if c.strip() == "on" else 0 for c in os.environ.get("BENCH_CAPS", "on,off").split(",")]
    names = os.environ.get("BENCH_RANGED_CONTENDERS", "sas,csv,gzip,parquet,orc,jsonl")
    labels = [c.strip() for c in names.split(",") if c.strip()]
    started_at, load, started = dt.datetime.now(dt.UTC), loadavg(), time.monotonic()
    paths = segment_files(4 if with_4x else 1, mib * MIB)
    shutil.rmtree(SINK_DIR, ignore_errors=True)
    shutil.rmtree(TMP_DIR, ignore_errors=True)
    TMP_DIR.mkdir(parents=True)
    subprocess.run([sys.executable, "-c", "import bench.contender, boto3, urllib3, handler.webhook, "
                    "transforms.formats.columnar"], cwd=ROOT, check=True,
                   env={**os.environ, "PYTHONDONTWRITEBYTECODE": "1", "PYTHONPATH": str(ROOT)})
    runs: list[Run] = []
    sizes: dict[str, int] = {}
    for label, files in (("1x", paths[:1]), ("4x", paths)) if with_4x else (("1x", paths[:1]),):
        want = expected_for(files)
        sizes[label] = want.size
        print(f"{label}: {want.size:,} bytes, {want.rows:,} rows", flush=True)
        servers = Servers(files, label)
        try:
            for cap in caps:
                for core_count in cores:
                    for name in labels:
                        runs.append(run_one(CONTENDERS[name], servers, want, label, cap, core_count))
        finally:
            servers.stop()
    section = report(runs, sizes, time.monotonic() - started, started_at, load, cap_mbps)
    write_report(section)
    print(section)
    shutil.rmtree(SINK_DIR, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
