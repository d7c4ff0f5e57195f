"""`make bench`, the fan-out step: N range workers, each a separate process, against one function.

Side by side in one run, from the same capped, ranged source (bench/rangeserver.py, ``BENCH_CAP_MBPS``
a connection, as S3 to Lambda) into the parts-only local S3 (bench/sinkserver.py):

- one function: the pipeline in one process with 2 cores (bench.contender, as bench/ranged.py runs it);
- one range alone: ``land_range`` of one range in its own process with 2 cores, which is what each
  Lambda range function gets (its throughput is what the README's model of 100 GiB and 1 TiB uses);
- the fan-out: the plan, then every range's ``land_range`` at once, each in its own process
  (bench/fanout_worker.py), all sharing this machine's cores. On Lambda each range has two vCPUs of its
  own, so this machine's wall time for N ranges is a lower bound of the gain, not the gain.

The assembly (UploadPartCopy inside S3) is not measured here: the local S3 stores parts only, and moto's
copy speed says nothing of S3's. Checks: the `.csv` range objects, concatenated in order, are the header
and the data file byte for byte (CRC32); the typed formats' ranges count every row once.

Settings (environment): ``BENCH_FANOUT_MB`` (default 256), ``BENCH_FANOUT_RANGES`` (8),
``BENCH_FANOUT_FORMATS`` ("csv,parquet,jsonl"), ``BENCH_CAP_MBPS`` (60).
"""

from __future__ import annotations

import datetime as dt
import json
import math
import os
import subprocess
import sys
import time
import uuid
import zlib
from dataclasses import dataclass
from typing import Any

from bench.ranged import (
    BUCKET,
    CONTENDERS,
    LOG_DIR,
    SINK_DIR,
    TMP_DIR,
    Expected,
    Servers,
    expected_for,
    run_one,
)
from bench.report import write_section
from bench.run import MB, ROOT, WORK, code_revision, loadavg, machine, segment_files
from bench.sinkserver import object_parts
from devstack.localstack import LOCAL_CREDENTIALS

BEGIN = "<!-- bench/fanout.py writes from here: make bench -->"
END = "<!-- bench/fanout.py writes up to here -->"
RESULT_MARK = "BENCH_RESULT "
MIB = 1 << 20
SUFFIXES = {"csv": ".csv", "parquet": ".parquet", "jsonl": ".jsonl", "gzip": ".csv.gz", "orc": ".orc"}


@dataclass
class Step:
    wall: float
    cpu: float
    peak_rss_mb: float
    output: dict[str, Any]


@dataclass
class Row:
    label: str
    one_function_s: float
    one_range_s: float
    one_range_bytes: int
    plan_s: float
    ranges_s: float  # from starting the processes to the last range (cold starts, check, redo)
    in_steps_s: float  # the steps' own time: first wave + check + redo
    ranges: int
    ranges_cpu_s: float
    peak_rss_mb: float
    checks: str


def environment(servers: Servers, cap_bytes: int, range_mb: float) -> dict[str, str]:
    env = {name: value for name, value in os.environ.items() if not name.islower()}
    endpoint = f"http://127.0.0.1:{servers.sink_port}"
    env.update({**LOCAL_CREDENTIALS, "AWS_ENDPOINT_URL": endpoint, "AWS_ENDPOINT_URL_S3": endpoint,
                "s3_bucket_name": BUCKET, "source_host_allowlist": "http://127.0.0.1:*",
                "fanout_min_mb": "1", "fanout_range_mb": str(max(1, math.ceil(range_mb))),
                "TMPDIR": str(TMP_DIR), "PYTHONDONTWRITEBYTECODE": "1", "PYTHONPATH": str(ROOT)})
    return env


def start_step(spec: dict[str, Any], env: dict[str, str]) -> subprocess.Popen[bytes]:
    return subprocess.Popen([sys.executable, "-m", "bench.fanout_worker"], cwd=ROOT,
                            env={**env, "BENCH_FANOUT": json.dumps(spec)}, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT)


def finish_step(child: subprocess.Popen[bytes], name: str) -> Step:
    assert child.stdout is not None
    output = child.stdout.read().decode("utf-8", "replace")
    child.wait()
    LOG_DIR.mkdir(parents=True, exist_ok=True)
    (LOG_DIR / f"fanout-{name}.log").write_text(output)
    lines = [line for line in output.splitlines() if line.startswith(RESULT_MARK)]
    if child.returncode != 0 or not lines:
        raise RuntimeError(f"fan-out step {name} failed (exit {child.returncode}):\n{output[-4000:]}")
    result = json.loads(lines[-1][len(RESULT_MARK):])
    return Step(result["wall"], result["cpu"], result["peak_rss"] / MB, result["output"])


def job_fields(servers: Servers, cap_bytes: int, key: str) -> dict[str, Any]:
    data_url, metadata_url = servers.urls(cap_bytes)
    return {"occurrence_id": f"bench-{uuid.uuid4().hex[:8]}", "task_id": "bench", "task_name": "bench",
            "tenant": "bench", "data_url": data_url, "metadata_url": metadata_url, "bucket": BUCKET,
            "key": key, "csv_header": True}


def check(label: str, state: dict[str, Any], outputs: list[dict[str, Any]], want: Expected) -> str:
    if label == "csv":
        crc = 0
        for index in range(state["rangeCount"]):
            key = f"{state['staging']}range-{index:05d}.part"
            for part in object_parts(SINK_DIR, BUCKET, key) or []:
                with open(part, "rb") as handle:
                    while chunk := handle.read(8 * MIB):
                        crc = zlib.crc32(chunk, crc)
        if crc != want.crc_with_header:
            raise AssertionError("the .csv ranges, concatenated, are not the header and the data file")
        return "ranges concatenated = header + data (CRC32)"
    rows = sum(int(o.get("rows") or 0) for o in outputs)
    if rows != want.rows:
        raise AssertionError(f"{label}: the ranges hold {rows} rows, the file {want.rows}")
    return f"{rows:,} rows, once each"


def fan_out(label: str, servers: Servers, cap_bytes: int, range_mb: float, want: Expected) -> Row:
    env = environment(servers, cap_bytes, range_mb)
    key = f"bench_fanout_{label}_{uuid.uuid4().hex[:8]}{SUFFIXES[label]}"
    plan = finish_step(start_step({"step": "plan", "job": job_fields(servers, cap_bytes, key)}, env),
                       f"{label}-plan")
    state = plan.output
    if not state.get("fanout"):
        raise RuntimeError(f"the plan did not fan out: {state.get('reason')}")
    # What the Map's ItemSelector passes each range (serverless.yml): the state but its range list.
    shared = {name: state[name] for name in ("job", "source", "format", "staging", "rangeCount",
                                             "rangeBytes")}
    ranges = state["ranges"]
    # One range alone, with the machine's 2 cores to itself: what each Lambda range function gets.
    alone = finish_step(start_step({"step": "range", "state": shared, "item": ranges[0]}, env),
                        f"{label}-range-alone")
    started = time.monotonic()
    children = [start_step({"step": "range", "state": shared, "item": item}, env) for item in ranges]
    steps = [finish_step(child, f"{label}-range-{i}") for i, child in enumerate(children)]
    first_wave = list(steps)
    # The state machine's next steps: the true start states, and the ranges landed again with them.
    checked_step = finish_step(start_step({"step": "check", "state": state}, env), f"{label}-check")
    checked = checked_step.output
    if checked.get("fallback"):
        raise RuntimeError(f"{label}: the fan-out fell back to one function: {checked['fallback']}")
    redo = [start_step({"step": "range", "state": shared, "item": item}, env) for item in checked["redo"]]
    for item, child in zip(checked["redo"], redo, strict=True):
        steps[int(item["index"])] = finish_step(child, f"{label}-range-{item['index']}-again")
    together = time.monotonic() - started
    redone = len(checked["redo"])
    # The steps' own time, warm, as the one function's is measured: the widest range of the first wave,
    # the check, the widest redone range.
    redone_walls = [steps[int(r["index"])].wall for r in checked["redo"]]
    in_steps = max(s.wall for s in first_wave) + checked_step.wall + max(redone_walls, default=0.0)
    checks = check(label, state, [s.output for s in steps], want) + (f"; {redone} redone" if redone else "")
    one = run_one(CONTENDERS[label], servers, want, "1x", cap_bytes // MB, 2)
    row = Row(label, one.wall, alone.wall, ranges[0]["end"] - ranges[0]["start"], plan.wall, together,
              in_steps, len(ranges), sum(s.cpu for s in steps), max(s.peak_rss_mb for s in [alone, *steps]),
              checks)
    print(f"  {label:8} one function {row.one_function_s:6.1f} s | one range alone {row.one_range_s:5.1f} s "
          f"({row.one_range_bytes / MB / row.one_range_s:5.0f} MB/s) | plan {row.plan_s:4.1f} s | "
          f"{row.ranges} ranges at once {row.in_steps_s:5.1f} s in the steps, {row.ranges_s:6.1f} s with "
          f"process starts | "
          f"{checks}", flush=True)
    return row


def report(rows: list[Row], size: int, range_mb: float, cap_mbps: int, seconds: float, started: dt.datetime,
           load: str) -> str:
    out = [BEGIN, "## Past one function: the fan-out's range workers (`make bench`, fan-out step)", "",
           "The same data file landed by one function, and by the fan-out's steps as separate processes "
           "(bench/fanout.py): the plan, one range alone (2 cores to itself, as each Lambda range function "
           f"has), then all {rows[0].ranges if rows else 'N'} ranges at once sharing this machine's cores. "
           f"Source capped at {cap_mbps} MB/s a connection (bench/rangeserver.py), target the parts-only "
           "local S3 (bench/sinkserver.py). The assembly inside S3 (UploadPartCopy) is not measured: "
           "the local S3 stores parts only.", "",
           f"- Command: `BENCH_FANOUT_MB={size // MIB} BENCH_FANOUT_RANGES={rows[0].ranges if rows else 0} "
           f"python -m bench.fanout` (took {seconds / 60:.1f} min)",
           f"- Date: {started:%Y-%m-%d %H:%M} UTC; code: {code_revision()}",
           f"- Machine: {machine()}; load average at start {load}, at the end {loadavg()} (shared)",
           f"- Data: {size:,} bytes of the generated CI360-like CSV; ranges of {range_mb:.0f} MiB", "",
           "| format | one function s (MB/s) | one range alone s (MB/s) | plan s | all ranges at once, "
           "in the steps s (MB/s) | vs one function | with process starts s | range CPU s total "
           "| VmHWM MB (a range) | checks |",
           "|---|---:|---:|---:|---:|---:|---:|---:|---:|---|"]
    for row in rows:
        mbps = size / MB
        out.append(f"| `{SUFFIXES[row.label]}` | {row.one_function_s:.1f} "
                   f"({mbps / row.one_function_s:.0f}) | "
                   f"{row.one_range_s:.1f} ({row.one_range_bytes / MB / row.one_range_s:.0f}) | "
                   f"{row.plan_s:.1f} | {row.in_steps_s:.1f} ({mbps / row.in_steps_s:.0f}) | "
                   f"{row.one_function_s / (row.plan_s + row.in_steps_s):.2f}x | {row.ranges_s:.1f} | "
                   f"{row.ranges_cpu_s:.1f} | "
                   f"{row.peak_rss_mb:.0f} | {row.checks} |")
    out += ["", "One function and one range alone: wall time around the transfer in a warm process (as "
            "bench/ranged.py measures); all ranges at once, in the steps: the widest range of the first "
            "wave + the check + the widest redone range, each timed inside its process; with process "
            "starts: from starting N fresh processes to the last redone range (cold starts included, as on "
            "Lambda). `vs one function`: one function's wall time over the fan-out's (plan + the steps). "
            "Here "
            "every range shares 2 cores, so CPU-bound formats cannot go faster than 2 cores allow; on "
            "Lambda each range function has its own two vCPUs, and the fan-out's wall time is about "
            "plan + ceil(ranges / MaxConcurrency) x one range alone + the assembly (README, \"Fan-out\").",
            END]
    return "\n".join(out)


def write_report(section: str) -> None:
    write_section(BEGIN, END, section)


def main() -> int:
    mib = int(os.environ.get("BENCH_FANOUT_MB", "256") or 256)
    count = int(os.environ.get("BENCH_FANOUT_RANGES", "8") or 8)
    cap_mbps = int(os.environ.get("BENCH_CAP_MBPS", "60") or 60)
    labels = [c.strip() for c in os.environ.get("BENCH_FANOUT_FORMATS", "csv,parquet,jsonl").split(",")
              if c.strip()]
    started_at, load, started = dt.datetime.now(dt.UTC), loadavg(), time.monotonic()
    (path,) = segment_files(1, mib * MIB)
    want = expected_for([path])
    range_mb = want.size / MIB / count
    TMP_DIR.mkdir(parents=True, exist_ok=True)
    WORK.mkdir(parents=True, exist_ok=True)
    print(f"fan-out: {want.size:,} bytes, {want.rows:,} rows, {count} ranges of ~{range_mb:.0f} MiB",
          flush=True)
    servers = Servers([path], "1x")
    rows = []
    try:
        for label in labels:
            rows.append(fan_out(label, servers, cap_mbps * MB, range_mb, want))
    finally:
        servers.stop()
    section = report(rows, want.size, range_mb, cap_mbps, time.monotonic() - started, started_at, load)
    write_report(section)
    print(section)
    return 0


if __name__ == "__main__":
    sys.exit(main())
