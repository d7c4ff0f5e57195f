"""`make bench`, second step: the conversion alone, in memory, on 1 and 2 cores (no network, no S3).

- ``on_bad_value=null``: 200,000 rows clean, then the same rows with 10 bad values (a letter in the
  numeric ``external_id``), to ``.parquet``: the bad-value path's cost as a ratio of the clean time.
- ``.jsonl`` against ``.parquet`` on the same rows: conversion throughput only.

Each figure is the best of ``BENCH_CONVERSION_ROUNDS`` (3) rounds in a fresh ``taskset`` process; the
rounds alternate, so noise from other work on the machine falls on both sides alike.
"""

from __future__ import annotations

import datetime as dt
import io
import json
import os
import subprocess
import sys
import time

from bench.run import ROOT, code_revision, loadavg, machine

REPORT = ROOT / "BENCHMARKS.md"
BEGIN = "<!-- bench/conversion.py writes from here: make bench -->"
END = "<!-- bench/conversion.py writes up to here -->"
ROWS = 200_000


class NullSink:
    closed = False

    def __init__(self) -> None:
        self.n = 0

    def write(self, data: bytes) -> int:
        self.n += len(data)
        return len(data)

    def writable(self) -> bool:
        return True

    def flush(self) -> None:
        pass

    def tell(self) -> int:
        return self.n


def child(fmt: str, policy: str, bad: int) -> None:
    """One conversion, timed, in this (fresh) process: prints seconds, rows, bad values."""
    import transforms.formats.columnar  # noqa: F401 (imports are not part of the conversion)
    from bench import data
    from transforms.ci360.layout import parse_layout
    from transforms.formats.registry import WriteContext, WriteOptions, format_named
    from transforms.schema.columns import build_schema
    from transforms.sources.local import LocalStream

    lines = b"".join(data.rows(0, 40_000_000)).split(b"\n")[:ROWS]
    for n in range(bad):  # evenly spread, in the numeric column
        row = (n + 1) * ROWS // (bad + 1)
        fields = lines[row].split(b",", 2)
        lines[row] = b",".join([fields[0], b"x" + fields[1], fields[2]])
    payload = b"\n".join(lines) + b"\n"
    schema = build_schema(parse_layout(data.metadata_json()), {})
    ctx = WriteContext(parse_layout(data.metadata_json()), schema, WriteOptions(on_bad_value=policy))
    sink = NullSink()
    started = time.perf_counter()
    report = format_named(fmt).write(LocalStream(io.BytesIO(payload), len(payload)), sink, ctx)  # type: ignore[arg-type]
    seconds = time.perf_counter() - started
    print(json.dumps({"seconds": seconds, "rows": report.rows, "bad": report.bad_values,
                      "bytes": len(payload), "out": sink.n}))


def measure(fmt: str, policy: str, bad: int, cores: int) -> dict:
    cpus = ",".join(str(c) for c in sorted(os.sched_getaffinity(0))[:cores])
    out = subprocess.run(["taskset", "-c", cpus, sys.executable, "-m", "bench.conversion", "--child", fmt,
                          policy, str(bad)], cwd=ROOT, capture_output=True, text=True, check=True,
                         env={**os.environ, "PYTHONPATH": str(ROOT)})
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> int:
    rounds = int(os.environ.get("BENCH_CONVERSION_ROUNDS", "3"))
    started_at, load, started = dt.datetime.now(dt.UTC), loadavg(), time.monotonic()
    cases = [("parquet", "null", 0), ("parquet", "null", 10), ("parquet", "fail", 0), ("jsonl", "fail", 0)]
    best: dict[tuple[str, str, int, int], dict] = {}
    for cores in (1, 2):
        for _ in range(rounds):
            for case in cases:
                result = measure(*case, cores)
                key = (*case, cores)
                if key not in best or result["seconds"] < best[key]["seconds"]:
                    best[key] = result
                if case[2]:
                    assert result["bad"] == {"external_id": case[2]}, result
                assert result["rows"] == ROWS, result
    csv_bytes = best[("parquet", "fail", 0, 1)]["bytes"]
    took = (time.monotonic() - started) / 60
    lines = [BEGIN, "## Conversion alone: bad values and JSON Lines (`make bench`, second step)", "",
             f"{ROWS:,} generated CI360-like rows ({csv_bytes:,} bytes of CSV) converted in memory into a "
             f"sink that only counts bytes; best of {rounds} alternating rounds, each in a fresh `taskset` "
             "process.", "",
             f"- Command: `.venv/bin/python -m bench.conversion` (took {took:.1f} min); date "
             f"{started_at:%Y-%m-%d %H:%M} UTC; code: {code_revision()}",
             f"- Machine: {machine()}; load average {load} at start, {loadavg()} at the end", "",
             "| cores | what | seconds | MB/s of CSV | ratio |", "|---:|---|---:|---:|---|"]
    for cores in (1, 2):
        clean, dirty = best[("parquet", "null", 0, cores)], best[("parquet", "null", 10, cores)]
        parquet, jsonl = best[("parquet", "fail", 0, cores)], best[("jsonl", "fail", 0, cores)]
        for label, result, ratio in (
                ("`.parquet`, on_bad_value=null, clean", clean, ""),
                ("`.parquet`, on_bad_value=null, 10 bad values", dirty,
                 f"{dirty['seconds'] / clean['seconds']:.2f}x the clean time (target at most 1.5x)"),
                ("`.parquet`", parquet, ""),
                ("`.jsonl`", jsonl, f"{parquet['seconds'] / jsonl['seconds']:.2f} of Parquet's throughput "
                                    "(target at least 0.5)")):
            lines.append(f"| {cores} | {label} | {result['seconds']:.2f} | "
                         f"{result['bytes'] / 1e6 / result['seconds']:.0f} | {ratio} |")
    lines.append(END)
    section = "\n".join(lines)
    text = REPORT.read_text()
    if BEGIN in text and END in text:
        head, rest = text.split(BEGIN, 1)
        text = head + section + rest.split(END, 1)[1]
    else:
        marker = "<!-- bench/ranged.py writes up to here -->"
        text = text.replace(marker, marker + "\n\n" + section, 1) if marker in text else text + "\n" + section
    REPORT.write_text(text)
    print(section)
    return 0


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "--child":
        child(sys.argv[2], sys.argv[3], int(sys.argv[4]))
        sys.exit(0)
    sys.exit(main())
