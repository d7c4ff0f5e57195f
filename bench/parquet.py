"""`make bench`, CSV -> Parquet: our typed writer against pyarrow's own loop, DuckDB and pandas.

``python -m bench.parquet`` (after ``python -m bench.run`` in ``make bench``). In one run, at 1x and 4x:

- ``ours-pipeline``: the connector as deployed, ``transforms.jobs.pipeline.run``: the data file read from a
  presigned URL on the local S3 (bench/run.py's moto server), a ``.parquet`` key written to the same S3;
- ``ours-core``: ``transforms.formats.columnar.write_parquet`` from a local file object into a null sink that
  counts bytes (what the other contenders do: read a local file, write locally or nowhere);
- ``limit``: pyarrow's own loop, ``open_csv`` with the same Arrow types (typed by the reader itself)
  into ``ParquetWriter`` (snappy, ms timestamps) with the same read options and row groups, null sink;
- ``duckdb``: ``SET threads=1; COPY (SELECT * FROM read_csv(...)) TO '....parquet' (FORMAT parquet)``;
- ``pandas``: ``read_csv`` + ``to_parquet`` (pyarrow engine), the whole file in memory;
- ``limit-naive`` (not run by default): the limit writing one row group per CSV block.

Each run is its own fresh ``python -m bench.parquet child`` process (imports before the clock, as in a
warm Lambda) that reports its wall and CPU time, its peak RSS (VmHWM) and the output it made; the
parent checks every output's row count (from the Parquet footer) against the CSV's. The data is
bench/run.py's generated CI360-like audience (``.bench/data/``, reused); 4x is its four segments in one
file. The table goes into BENCHMARKS.md between this module's markers and to stdout.

Settings (environment):
- ``BENCH_GB``: the 1x size in GiB (default 1; 0.1 for a quick run), as for bench/run.py;
- ``BENCH_4X=0``: skip 4x;
- ``BENCH_PARQUET_1X``, ``BENCH_PARQUET_4X``: which contenders run, in order; a name given twice runs
  twice and the fastest round counts (defaults below: the close race, limit against ours, twice);
- ``BENCH_PROFILE=1``: a cProfile of each child's main thread, in ``.bench/logs/``.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import resource
import shutil
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench import data
from bench.contender import RESULT_MARK, cpu_seconds, memory_status, proc_io

ROOT = Path(__file__).absolute().parent.parent
WORK = ROOT / ".bench"
DATA_DIR = WORK / "data"
OUT_DIR = WORK / "parquet-tmp"  # DuckDB's and pandas' output files, removed after each check
LOG_DIR = WORK / "logs"
REPORT = ROOT / "BENCHMARKS.md"
BEGIN = "<!-- parquet-bench:start -->"
END = "<!-- parquet-bench:end -->"
GIB = 1 << 30
MB = 1_000_000
TAIL = 4 << 20  # bytes of output a null sink keeps, enough for any footer here

# The types every contender is given: the layout's, with the overrides a data team would send.
OVERRIDES = {"external_id": "bigint", "order_total": "decimal(12,2)"}
DEFAULT_1X = "limit,ours-core,duckdb,pandas,ours-pipeline,limit,ours-core,limit,ours-core"
DEFAULT_4X = "limit,ours-core,duckdb,ours-pipeline,limit,ours-core"

LABELS = {
    "ours-pipeline": "ours, end to end: `pipeline.run`, presigned URL -> S3 `.parquet`",
    "ours-core": "ours, core: `write_parquet`, local file -> null sink",
    "limit": "pyarrow limit: typed `open_csv` -> `ParquetWriter`, null sink",
    "limit-naive": "pyarrow, naive loop: a row group per CSV block, null sink",
    "duckdb": "DuckDB, 1 thread: `COPY ... TO` a file",
    "pandas": "pandas: `read_csv` + `to_parquet` to a file",
}


def typed_schema() -> Any:
    from transforms.ci360.layout import parse_layout
    from transforms.schema.columns import build_schema

    return build_schema(parse_layout(data.metadata_json()), OVERRIDES)


# == the child: one contender, once, measured ======================================================

class NullSink:
    """A write-only file that keeps nothing but a count and the last bytes (where the footer is)."""

    def __init__(self) -> None:
        self.bytes_written = 0
        self._tail: list[bytes] = []
        self._tail_size = 0
        self.closed = False

    def writable(self) -> bool:
        return True

    def write(self, chunk: Any) -> int:
        size = memoryview(chunk).nbytes
        self.bytes_written += size
        self._tail.append(bytes(chunk))
        self._tail_size += size
        while self._tail_size - len(self._tail[0]) >= TAIL:
            self._tail_size -= len(self._tail.pop(0))
        return size

    def flush(self) -> None:
        pass

    def close(self) -> None:
        self.closed = True

    def tail(self) -> bytes:
        return b"".join(self._tail)


def footer(tail: bytes) -> dict[str, int]:
    """Rows and row groups from a Parquet file's last bytes (its footer: metadata, length, magic)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    if tail[-4:] != b"PAR1":
        raise ValueError("the output does not end with a Parquet footer")
    length = int.from_bytes(tail[-8:-4], "little")
    metadata = pq.read_metadata(pa.BufferReader(b"PAR1" + tail[-8 - length:]))
    return {"rows": metadata.num_rows, "row_groups": metadata.num_row_groups}


def read_options(names: list[str]) -> Any:
    """What ``TypedCsvReader`` asks of pyarrow's reader, so that the limit parses exactly as ours."""
    import pyarrow.csv as pacsv

    from transforms.formats.typed_csv import BLOCK_SIZE

    return (pacsv.ReadOptions(column_names=names, block_size=BLOCK_SIZE),
            pacsv.ParseOptions(newlines_in_values=True))


class Limit:
    """pyarrow's own loop, each column typed by the CSV reader (no text step, no per-column casts)."""

    def __init__(self, naive: bool = False) -> None:
        import pyarrow as pa
        import pyarrow.csv as pacsv
        import pyarrow.parquet as pq

        from transforms.formats.registry import WriteOptions
        from transforms.schema.arrow import arrow_type

        self.pa, self.pacsv, self.pq = pa, pacsv, pq
        self.schema = typed_schema()
        self.types = {f.name: arrow_type(f.type) for f in self.schema.fields}
        self.naive = naive
        self.row_group_bytes = WriteOptions().row_group_bytes

    def __call__(self, spec: dict[str, Any]) -> dict[str, Any]:
        pa, pacsv, pq = self.pa, self.pacsv, self.pq
        read, parse = read_options(self.schema.names)
        sink = NullSink()
        reader = pacsv.open_csv(spec["path"], read_options=read, parse_options=parse,
                                convert_options=pacsv.ConvertOptions(column_types=self.types))
        writer = pq.ParquetWriter(sink, reader.schema, compression="snappy", coerce_timestamps="ms",
                                  allow_truncated_timestamps=True, use_deprecated_int96_timestamps=False)
        rows = 0
        pending: list[Any] = []
        size = 0
        for batch in reader:
            rows += batch.num_rows
            if self.naive:
                writer.write_batch(batch)
                continue
            pending.append(batch)  # the same row groups as ours: gathered to row_group_bytes
            size += batch.nbytes
            if size >= self.row_group_bytes:
                table = pa.Table.from_batches(pending, reader.schema)
                writer.write_table(table, row_group_size=table.num_rows)
                pending, size = [], 0
        if pending:
            table = pa.Table.from_batches(pending, reader.schema)
            writer.write_table(table, row_group_size=table.num_rows)
        writer.close()
        return {"rows": rows, "bytes_out": sink.bytes_written, "footer": footer(sink.tail())}


class OursCore:
    """``write_parquet`` as the pipeline calls it, on a plain local file object, into a null sink."""

    def __init__(self) -> None:
        from transforms.ci360.layout import parse_layout
        from transforms.formats.columnar import write_parquet
        from transforms.formats.registry import WriteContext, WriteOptions

        self.write = write_parquet
        layout = parse_layout(data.metadata_json())
        self.ctx = WriteContext(layout, typed_schema(), WriteOptions())

    def __call__(self, spec: dict[str, Any]) -> dict[str, Any]:
        sink = NullSink()
        with open(spec["path"], "rb") as source:
            report = self.write(source, sink, self.ctx)  # type: ignore[arg-type]
        return {"rows": report.rows, "bad_values": report.bad_values, "bytes_out": sink.bytes_written,
                "footer": footer(sink.tail())}


class OursPipeline:
    """The connector as deployed: ``pipeline.run`` for a webhook payload asking for a ``.parquet`` key,
    with the column_types send parameter; clients (S3, HTTP pool) made before the clock."""

    def __init__(self) -> None:
        from devstack.localstack import s3_client, webhook_payload
        from transforms import columnar  # noqa: F401  (imported on first use in a container: warm here)
        from transforms.ci360.payload import parse_job
        from transforms.jobs.pipeline import run
        from transforms.settings import Settings
        from transforms.sources.http import HttpSource

        self.run, self.parse_job, self.payload = run, parse_job, webhook_payload
        self.settings_from = Settings.from_env
        self.s3 = s3_client()
        self.http = HttpSource()

    def __call__(self, spec: dict[str, Any]) -> dict[str, Any]:
        settings = self.settings_from({"s3_bucket_name": spec["bucket"],
                                       "source_host_allowlist": spec["allowlist"]})
        job = self.parse_job(self.payload(spec["data_url"], spec["metadata_url"], spec["key"],
                                          column_types=json.dumps(OVERRIDES)), settings)
        result = self.run(job, settings, self.s3, self.http)
        return {"rows": result.rows, "bad_values": result.bad_values, "bytes_read": result.bytes_read,
                "bytes_out": result.bytes_written, "key": result.key}


def duckdb_type(athena: str) -> str:
    simple = {"string": "VARCHAR", "bigint": "BIGINT", "int": "INTEGER", "double": "DOUBLE",
              "date": "DATE", "timestamp": "TIMESTAMP", "boolean": "BOOLEAN"}
    return simple.get(athena) or athena.upper()  # decimal(12,2) -> DECIMAL(12,2)


class DuckDb:
    """One thread, the same column types, DuckDB's own CSV reader and Parquet writer (snappy)."""

    def __init__(self) -> None:
        import duckdb

        self.db = duckdb.connect()
        self.db.execute("SET threads=1")
        self.columns = "{" + ", ".join(f"'{f.name}': '{duckdb_type(f.type)}'"
                                       for f in typed_schema().fields) + "}"

    def __call__(self, spec: dict[str, Any]) -> dict[str, Any]:
        self.db.execute(f"COPY (SELECT * FROM read_csv('{spec['path']}', header=false, delim=',', "
                        f"quote='\"', escape='\"', columns={self.columns})) "
                        f"TO '{spec['out']}' (FORMAT parquet)")
        return {"bytes_out": os.path.getsize(spec["out"])}


class Pandas:
    """What a data engineer writes: the whole file into a DataFrame, then ``to_parquet``."""

    def __init__(self) -> None:
        import pandas as pd
        import pyarrow.parquet  # noqa: F401  (to_parquet's engine: an import, not part of the run)

        self.pd = pd
        self.schema = typed_schema()

    def __call__(self, spec: dict[str, Any]) -> dict[str, Any]:
        pandas_types = {"string": "str", "bigint": "int64", "boolean": "bool"}
        fields = self.schema.fields
        dtypes = {f.name: pandas_types.get(f.type, "float64") for f in fields
                  if f.type not in ("date", "timestamp")}  # decimal(12,2) -> float64: pandas has no decimal
        frame = self.pd.read_csv(spec["path"], header=None, names=self.schema.names, dtype=dtypes,
                                 parse_dates=[f.name for f in fields if f.type in ("date", "timestamp")])
        frame.to_parquet(spec["out"], engine="pyarrow", index=False)
        return {"rows": len(frame), "bytes_out": os.path.getsize(spec["out"])}


CHILDREN = {"limit": Limit, "limit-naive": lambda: Limit(naive=True), "ours-core": OursCore,
            "ours-pipeline": OursPipeline, "duckdb": DuckDb, "pandas": Pandas}


def child() -> int:
    spec = json.loads(os.environ["BENCH_SPEC"])
    run = CHILDREN[spec["contender"]]()  # imports, clients, connections: before the clock
    profiler = None
    if os.environ.get("BENCH_PROFILE", "").strip() not in ("", "0"):
        import cProfile

        profiler = cProfile.Profile()
    rss_before = memory_status("VmRSS")
    io_before = proc_io()
    main_before = resource.getrusage(resource.RUSAGE_THREAD)
    cpu_before = cpu_seconds()
    started = time.perf_counter()
    if profiler:
        profiler.enable()
    outcome = run(spec)
    if profiler:
        profiler.disable()
    wall = time.perf_counter() - started
    cpu = cpu_seconds() - cpu_before
    main_after = resource.getrusage(resource.RUSAGE_THREAD)
    io_after = proc_io()
    result = {
        "outcome": outcome, "wall": wall, "cpu": cpu,
        "main_thread_cpu": (main_after.ru_utime + main_after.ru_stime
                            - main_before.ru_utime - main_before.ru_stime),
        "peak_rss": memory_status("VmHWM"), "rss_before": rss_before,
        "write_bytes_transfer": io_after.get("write_bytes", 0) - io_before.get("write_bytes", 0),
    }
    if profiler:
        import pstats

        print("-- cProfile of the main thread during the run (pyarrow's and DuckDB's own threads are not "
              "in it):")
        pstats.Stats(profiler, stream=sys.stdout).sort_stats("tottime").print_stats(30)
        pstats.Stats(profiler, stream=sys.stdout).sort_stats("cumulative").print_stats(30)
    sys.stdout.flush()
    print(RESULT_MARK + json.dumps(result), flush=True)
    return 0


# == the parent: data, server, runs, checks, report =================================================

@dataclass
class Input:
    label: str  # "1x" or "4x"
    path: Path  # the local CSV every local contender reads
    size: int
    rows: int
    staged: Any = None  # bench.run.Staged, once on the local S3 (for ours-pipeline)


@dataclass
class Run:
    contender: str
    size: str
    data_bytes: int
    rows: int
    round: int
    wall: float = 0.0
    cpu: float = 0.0
    main_thread_cpu: float = 0.0
    peak_rss_mb: float = 0.0  # VmHWM: the child's own high-water mark since exec
    maxrss_mb: float = 0.0  # ru_maxrss of the child (wait4), a cross-check
    rss_before_mb: float = 0.0
    sampled_rss_mb: float = 0.0
    process_wall: float = 0.0
    disk_bytes: int = 0
    bytes_out: int = 0
    server_cpu: float = 0.0
    checks: list[str] = field(default_factory=list)
    load: str = ""

    @property
    def mb_per_s(self) -> float:
        return self.data_bytes / MB / self.wall

    @property
    def rows_per_s(self) -> float:
        return self.rows / self.wall


def count_rows(path: Path) -> int:
    """Records of the file (no generated field holds a newline); reading it also puts it in the page
    cache, so that no contender pays for the first read from disk."""
    rows = 0
    with open(path, "rb") as handle:
        while chunk := handle.read(16 << 20):
            rows += chunk.count(b"\n")
    return rows


def inputs(gib: float, with_4x: bool) -> list[Input]:
    from bench.run import segment_files

    segment_bytes = int(gib * GIB)
    paths = segment_files(4 if with_4x else 1, segment_bytes)
    made = [Input("1x", paths[0], paths[0].stat().st_size, count_rows(paths[0]))]
    if with_4x:
        joined = DATA_DIR / f"parquet-4x-v{data.GENERATOR_VERSION}-{segment_bytes}.csv"
        if not joined.exists():
            print(f"joining the four segments into {joined} ...", flush=True)
            partial = joined.with_name(joined.name + ".partial")
            with open(partial, "wb") as out:
                for path in paths:
                    with open(path, "rb") as part:
                        shutil.copyfileobj(part, out, 16 << 20)
            os.replace(partial, joined)
        made.append(Input("4x", joined, joined.stat().st_size, count_rows(joined)))
    for item in made:
        print(f"{item.label}: {item.path.name}, {item.size:,} bytes, {item.rows:,} rows", flush=True)
    return made


def check(run: Run, item: Input, outcome: dict[str, Any], out: Path | None, server: Any, bucket: str) -> None:
    """Every output's row count, from its Parquet footer, against the CSV's; ours also report theirs."""
    import pyarrow.parquet as pq

    if run.contender in ("limit", "limit-naive", "ours-core"):
        meta = outcome["footer"]
    elif run.contender == "ours-pipeline":
        from devstack.localstack import s3_client

        s3 = s3_client(server.endpoint)
        end = s3.get_object(Bucket=bucket, Key=outcome["key"], Range="bytes=-8")["Body"].read()
        length = int.from_bytes(end[:4], "little")
        tail = s3.get_object(Bucket=bucket, Key=outcome["key"], Range=f"bytes=-{length + 8}")["Body"].read()
        meta = footer(tail)
        size = s3.head_object(Bucket=bucket, Key=outcome["key"])["ContentLength"]
        if size != outcome["bytes_out"]:
            raise AssertionError(f"{run.contender}: {size} bytes landed, {outcome['bytes_out']} reported")
        if outcome["bytes_read"] != item.size:
            raise AssertionError(f"{run.contender}: read {outcome['bytes_read']} bytes of {item.size}")
        s3.delete_object(Bucket=bucket, Key=outcome["key"])
    else:
        assert out is not None
        metadata = pq.read_metadata(out)
        meta = {"rows": metadata.num_rows, "row_groups": metadata.num_row_groups}
        types = ", ".join(f"{c.name}: {c.physical_type}"
                          + (f"/{c.logical_type}" if str(c.logical_type) != "None" else "")
                          for c in (metadata.schema.column(i) for i in range(len(metadata.schema))))
        run.checks.append(f"types {types}")
        out.unlink()
    if meta["rows"] != item.rows:
        raise AssertionError(f"{run.contender} at {item.label}: {meta['rows']} rows in the Parquet footer, "
                             f"{item.rows} in the CSV")
    if "rows" in outcome and outcome["rows"] != item.rows:
        raise AssertionError(f"{run.contender} at {item.label}: reported {outcome['rows']} rows, "
                             f"{item.rows} in the CSV")
    if outcome.get("bad_values"):
        raise AssertionError(f"{run.contender}: bad values {outcome['bad_values']}")
    run.checks.insert(0, f"{meta['rows']:,} rows ok, {meta['row_groups']} row groups")


def run_child(name: str, item: Input, round_: int, server: Any, bucket: str) -> Run:
    import psutil

    from bench.run import OutOfMemory, Sampler, loadavg

    out = OUT_DIR / f"{item.label}-{name}-{uuid.uuid4().hex[:8]}.parquet"
    spec: dict[str, Any] = {"contender": name, "path": str(item.path), "out": str(out)}
    env = {key: value for key, value in os.environ.items() if not key.islower()}  # no deployment settings
    env.update({"PYTHONDONTWRITEBYTECODE": "1", "PYTHONPATH": str(ROOT)})
    if name == "ours-pipeline":
        spec.update({"data_url": item.staged.data_url, "metadata_url": item.staged.metadata_url,
                     "bucket": bucket, "key": f"bench/{item.label}/audience-{uuid.uuid4().hex[:8]}.parquet",
                     "allowlist": server.endpoint})
        env.update(server.environ())
    env["BENCH_SPEC"] = json.dumps(spec)
    load = loadavg()
    server_proc = psutil.Process(server.process.pid) if server else None
    server_cpu = sum(server_proc.cpu_times()[:2]) if server_proc else 0.0
    started = time.perf_counter()
    process = subprocess.Popen([sys.executable, "-m", "bench.parquet", "child"], cwd=ROOT, env=env,
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    sampler = Sampler(process.pid, server.process.pid if server else os.getpid(), victim=process.pid)
    sampler.start()
    assert process.stdout is not None
    output = process.stdout.read().decode("utf-8", "replace")
    _, status, usage = os.wait4(process.pid, 0)
    process.returncode = os.waitstatus_to_exitcode(status)
    process_wall = time.perf_counter() - started
    sampler.stop.set()
    sampler.join()
    LOG_DIR.mkdir(parents=True, exist_ok=True)
    (LOG_DIR / f"parquet-{item.label}-{name}-{round_}.log").write_text(output)
    if sampler.tripped:
        raise OutOfMemory(f"{name} at {item.label} stopped: the machine ran low on memory")
    lines = [line for line in output.splitlines() if line.startswith(RESULT_MARK)]
    if process.returncode != 0 or not lines:
        raise RuntimeError(f"{name} at {item.label} failed (exit {process.returncode}):\n{output[-4000:]}")
    result = json.loads(lines[-1][len(RESULT_MARK):])
    run = Run(name, item.label, item.size, item.rows, round_, wall=result["wall"], cpu=result["cpu"],
              main_thread_cpu=result["main_thread_cpu"], peak_rss_mb=result["peak_rss"] / MB,
              maxrss_mb=usage.ru_maxrss * 1024 / MB, rss_before_mb=result["rss_before"] / MB,
              sampled_rss_mb=sampler.child_peak / MB, process_wall=process_wall,
              disk_bytes=result["write_bytes_transfer"], bytes_out=result["outcome"]["bytes_out"],
              server_cpu=(sum(server_proc.cpu_times()[:2]) - server_cpu) if server_proc else 0.0, load=load)
    check(run, item, result["outcome"], out, server, bucket)
    print(f"  {name} @ {item.label} round {round_}: wall {run.wall:.1f} s, cpu {run.cpu:.1f} s "
          f"(main thread {run.main_thread_cpu:.1f}), peak RSS {run.peak_rss_mb:.0f} MB "
          f"(ru_maxrss {run.maxrss_mb:.0f}, sampled {run.sampled_rss_mb:.0f}), {run.mb_per_s:.1f} MB/s, "
          f"{run.rows_per_s / 1e6:.2f} M rows/s, out {run.bytes_out:,} B [{'; '.join(run.checks)}] "
          f"(load {load})", flush=True)
    return run


# -- the report -------------------------------------------------------------------------------------

@dataclass
class Summary:
    contender: str
    size: str
    best: Run  # the fastest round: the least disturbed by other work on the machine
    rounds: list[Run]

    @property
    def peak_rss_mb(self) -> float:
        return max(run.peak_rss_mb for run in self.rounds)


def summarize(runs: list[Run]) -> list[Summary]:
    groups: dict[tuple[str, str], list[Run]] = {}
    for run in runs:
        groups.setdefault((run.size, run.contender), []).append(run)
    return [Summary(name, size, min(group, key=lambda run: run.wall), group)
            for (size, name), group in groups.items()]


def table(summaries: list[Summary]) -> str:
    limits = {item.size: item.best for item in summaries if item.contender == "limit"}
    rows = ["| contender | size | wall s | CPU s (main thread) | peak RSS MB | rows/s | MB/s "
            "| throughput vs limit | CPU vs limit | output |",
            "|---|---|---:|---:|---:|---:|---:|---:|---:|---|"]
    for item in summaries:
        run, limit = item.best, limits.get(item.size)
        ratio = f"{limit.wall / run.wall:.2f}x" if limit else "n/a"
        cpu_ratio = f"{limit.cpu / run.cpu:.2f}x" if limit else "n/a"
        rounds = f" (best of {len(item.rounds)})" if len(item.rounds) > 1 else ""
        output = {"ours-pipeline": "S3 (moto) object", "duckdb": "file under .bench/",
                  "pandas": "file under .bench/"}.get(item.contender, "null sink")
        rows.append(f"| {LABELS[item.contender]} | {item.size} ({run.data_bytes / GIB:.2f} GiB) "
                    f"| {run.wall:.1f}{rounds} | {run.cpu:.1f} ({run.main_thread_cpu:.1f}) "
                    f"| {item.peak_rss_mb:.0f} | {run.rows_per_s / 1e6:.2f} M | {run.mb_per_s:.1f} "
                    f"| {ratio} | {cpu_ratio} | {output}, {run.bytes_out / MB:.0f} MB |")
    return "\n".join(rows)


def details(runs: list[Run]) -> str:
    rows = ["| contender | size | round | wall s | CPU s | main-thread CPU s | peak RSS MB (VmHWM) "
            "| ru_maxrss MB | RSS at start MB | sampled peak MB | process wall s | disk bytes written "
            "| server CPU s | load before | checks |",
            "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|---|"]
    for run in runs:
        rows.append(f"| {run.contender} | {run.size} | {run.round} | {run.wall:.1f} | {run.cpu:.1f} "
                    f"| {run.main_thread_cpu:.1f} | {run.peak_rss_mb:.0f} | {run.maxrss_mb:.0f} "
                    f"| {run.rss_before_mb:.0f} | {run.sampled_rss_mb:.0f} | {run.process_wall:.1f} "
                    f"| {run.disk_bytes:,} | {run.server_cpu:.1f} | {run.load} | {'; '.join(run.checks)} |")
    return "\n".join(rows)


def verdict(summaries: list[Summary]) -> list[str]:
    by = {(item.contender, item.size): item for item in summaries}
    lines = []
    for size in ("1x", "4x"):
        limit, duck = by.get(("limit", size)), by.get(("duckdb", size))
        for name in ("ours-core", "ours-pipeline"):
            ours = by.get((name, size))
            if not ours:
                continue
            if limit:
                ratio = limit.best.wall / ours.best.wall
                lines.append(f"- at least 0.9x the pyarrow limit's throughput, {name} @ {size}: {ratio:.2f}x "
                             f"({ours.best.mb_per_s:.1f} vs {limit.best.mb_per_s:.1f} MB/s): "
                             f"{'met' if ratio >= 0.9 else 'MISSED'}")
            if duck:
                ahead = ours.best.wall < duck.best.wall
                lines.append(f"- ahead of DuckDB on one thread, {name} @ {size}: {ours.best.mb_per_s:.1f} vs "
                             f"{duck.best.mb_per_s:.1f} MB/s: {'met' if ahead else 'MISSED'}")
    for name in ("ours-core", "ours-pipeline"):
        for size in ("1x", "4x"):
            ours = by.get((name, size))
            if ours:
                lines.append(f"- peak RSS under 400 MB, {name} @ {size}: {ours.peak_rss_mb:.0f} MB: "
                             f"{'met' if ours.peak_rss_mb < 400 else 'MISSED'}")
        one, four = by.get((name, "1x")), by.get((name, "4x"))
        if one and four:
            flat = abs(four.peak_rss_mb - one.peak_rss_mb) <= max(0.1 * one.peak_rss_mb, 20)
            lines.append(f"- peak RSS flat from 1x to 4x (within 10% or 20 MB), {name}: "
                         f"{one.peak_rss_mb:.0f} -> {four.peak_rss_mb:.0f} MB: {'met' if flat else 'MISSED'}")
    return lines


def report(runs: list[Run], items: list[Input], started: dt.datetime, seconds: float, gib: float,
           load: tuple[str, str], notes: list[str]) -> str:
    from bench.run import code_revision, machine

    summaries = summarize(runs)
    sizes = "; ".join(f"{item.label} = {item.size:,} bytes, {item.rows:,} rows" for item in items)
    settings = [f"BENCH_GB={gib:g}"] if gib != 1 else []
    for name in ("BENCH_4X", "BENCH_PARQUET_1X", "BENCH_PARQUET_4X", "BENCH_PROFILE"):
        if os.environ.get(name):
            settings.append(f"{name}={os.environ[name]}")
    types = ", ".join(f"{f.name} {f.type}" for f in typed_schema().fields)
    from transforms.formats.registry import WriteOptions
    from transforms.formats.typed_csv import BLOCK_SIZE

    block_mib, group_mib = BLOCK_SIZE / (1 << 20), WriteOptions().row_group_bytes / (1 << 20)
    return "\n".join([
        BEGIN,
        "## CSV -> Parquet: our typed writer against pyarrow, DuckDB and pandas (`make bench`)",
        "",
        f"- Command: `make bench` (its second step, `.venv/bin/python -m bench.parquet`"
        f"{'; ' + ', '.join(settings) if settings else ''}; took {seconds / 60:.1f} min)",
        f"- Date: {started.strftime('%Y-%m-%d %H:%M UTC')}; code: {code_revision()}",
        f"- Machine: {machine()}, shared with other jobs: load average (1, 5, 15 min) {load[0]} at the "
        f"start, {load[1]} at the end (and before each run in Details)",
        f"- Versions: {versions()}",
        f"- Data: bench/run.py's generated CI360-like headerless CSV (uuid, bigint id, email, names and "
        f"cities quoted when they hold a comma or a quote, date, datetime, decimal with empty values, "
        f"boolean); 4x is its four segments in one file: {sizes}",
        f"- Types, the same for every contender (layout plus `column_types` overrides): {types}. DuckDB: the "
        "same as DuckDB types (`DECIMAL(12,2)` etc.). pandas, its idiomatic path: `dtype` str/int64/bool, "
        "the decimal as float64 (pandas has no decimal dtype), dates and datetimes via `parse_dates` "
        "(so the date lands as a timestamp).",
        "",
        table(summaries),
        "",
        "Each run is a fresh process (`python -m bench.parquet child`); imports, clients and DuckDB's "
        "connection are made before the clock starts. Wall and CPU are the conversion itself; CPU is all "
        "threads (main thread in brackets: pyarrow parses and encodes on its own threads). Where a "
        "contender ran more than once (interleaved with the others) wall is its fastest round and peak RSS "
        "the highest of its rounds; every round is in Details. Throughput vs limit is the limit's wall over "
        "the contender's at the same size (higher is faster); CPU vs limit is the same for CPU seconds "
        "(the limit's over the contender's: less sensitive to other work on the machine than wall time, "
        "but blind to parallelism). Peak RSS is the child's `VmHWM` (its own "
        "high-water mark since exec, imports included) in 10^6 bytes; MB/s is CSV input bytes (10^6) per "
        "second. Every output's row count was checked against the CSV's from its Parquet footer "
        "(the null sinks keep the file's last bytes; the S3 object's were fetched by range; DuckDB's and "
        "pandas' files were read back, then deleted).",
        "",
        "What each contender does:",
        "",
        "- ours, core: `transforms.formats.columnar.write_parquet(open(csv, 'rb'), NullSink(), ctx)`: "
        f"`TypedCsvReader` (pyarrow `open_csv` on the Python file object, every column as text, "
        f"{block_mib:g} MiB blocks, `newlines_in_values=True`, then one `pyarrow.compute` conversion per "
        f"column and batch) and `ParquetWriter` (snappy, INT64 MILLIS) with batches gathered into row groups "
        f"of {group_mib:g} MiB of Arrow data (its defaults, `WriteOptions()`).",
        "- pyarrow limit: `open_csv(path)` (native file reads) with the same read and parse options and "
        "`column_types` set to the same Arrow types, so the reader converts while it parses; the same "
        "writer options and the same row groups (pyarrow's own loop, with our block size and row groups).",
        "- ours, end to end: `transforms.jobs.pipeline.run` for a webhook payload (`s3_filename` "
        "`*.parquet`, `column_types` as above), reading the data file from a presigned URL on the local S3 "
        "(moto via bench/s3server.py, a separate process on the same 2 cores: its CPU is in Details) and "
        "writing the object there by multipart upload; deployment settings at their defaults.",
        "- DuckDB: `SET threads=1; COPY (SELECT * FROM read_csv('<csv>', header=false, delim=',', "
        "quote='\"', escape='\"', columns={...})) TO '<.bench/parquet-tmp/...parquet>' (FORMAT parquet)`: "
        "its defaults (snappy, 122,880-row row groups, microsecond timestamps); the file is on local disk "
        "(page cache).",
        "- pandas: `read_csv(csv, header=None, names=..., dtype=..., parse_dates=...)` then "
        "`to_parquet(<file>, engine='pyarrow', index=False)` (snappy): the whole file in memory, so not run "
        "at 4x by default.",
        "",
        "### Targets",
        "",
        *verdict(summaries),
        *notes,
        "",
        "### Details",
        "",
        "ru_maxrss is the child's as `wait4` reports it; Linux carries the parent's RSS at fork/exec into "
        "it, so it is at least the parent's size and VmHWM is the figure that counts. Sampled peak is psutil "
        "every 50 ms. Disk bytes written is the child's `/proc/self/io` `write_bytes` during the run. Server "
        "CPU is what the moto server spent meanwhile. Each child's output (and with `BENCH_PROFILE=1` a "
        "cProfile of its main thread) is in `.bench/logs/parquet-*.log`.",
        "",
        details(runs),
        END,
    ])


def versions() -> str:
    from importlib.metadata import version

    return ", ".join(f"{name} {version(name)}" for name in ("pyarrow", "duckdb", "pandas", "numpy", "moto"))


def write_report(section: str) -> None:
    """Replace only what lies between this module's markers; without them, append at the end."""
    text = REPORT.read_text() if REPORT.exists() else "# Benchmarks\n"  # re-read right before writing
    if BEGIN in text and END in text:
        head, rest = text.split(BEGIN, 1)
        text = head + section + rest.split(END, 1)[1]
    else:
        text = text.rstrip("\n") + "\n\n" + section + "\n"
    REPORT.write_text(text)


# -- main -------------------------------------------------------------------------------------------

def plan(name: str, default: str) -> list[str]:
    names = [part.strip() for part in os.environ.get(name, default).split(",") if part.strip()]
    unknown = sorted(set(names) - set(CHILDREN))
    if unknown:
        raise SystemExit(f"{name}: unknown contender(s) {', '.join(unknown)}; known: {', '.join(CHILDREN)}")
    return names


def main() -> int:
    from bench.run import OutOfMemory, loadavg, stage_guarded, start_server, unstage
    from devstack.localstack import s3_client

    gib = float(os.environ.get("BENCH_GB", "1") or 1)
    with_4x = os.environ.get("BENCH_4X", "1").strip() not in ("0", "false", "no")
    plans = {"1x": plan("BENCH_PARQUET_1X", DEFAULT_1X), "4x": plan("BENCH_PARQUET_4X", DEFAULT_4X)}
    started_at, started, load_at_start = dt.datetime.now(dt.UTC), time.monotonic(), loadavg()
    items = inputs(gib, with_4x)
    shutil.rmtree(OUT_DIR, ignore_errors=True)
    OUT_DIR.mkdir(parents=True)
    needs_s3 = any("ours-pipeline" in plans[item.label] for item in items)
    server = start_server() if needs_s3 else None
    runs: list[Run] = []
    notes: list[str] = []
    try:
        bucket = ""
        if server:
            os.environ.update(server.environ())  # credentials and endpoint, for this process's clients
            s3 = s3_client(server.endpoint)
            staging, bucket = f"ci360-staging-{uuid.uuid4().hex[:8]}", f"target-{uuid.uuid4().hex[:8]}"
            s3.create_bucket(Bucket=staging)
            s3.create_bucket(Bucket=bucket)
        for item in items:
            try:
                if server and "ours-pipeline" in plans[item.label]:
                    item.staged = stage_guarded(s3, staging, item.label, [item.path], server)
                    if item.staged.rows != item.rows or item.staged.size != item.size:
                        raise AssertionError(f"staged {item.staged.size} bytes / {item.staged.rows} rows")
                for name in plans[item.label]:
                    done = sum(1 for run in runs if run.size == item.label and run.contender == name)
                    runs.append(run_child(name, item, done + 1, server, bucket))
                if item.staged:
                    unstage(s3, staging, item.staged)
            except OutOfMemory as exc:
                notes.append(f"- {exc}; the runs after it were not made.")
                print(f"!! {exc}", flush=True)
                break
    finally:
        if server:
            server.stop()
        shutil.rmtree(OUT_DIR, ignore_errors=True)
    text = report(runs, items, started_at, time.monotonic() - started, gib, (load_at_start, loadavg()), notes)
    write_report(text)
    print()
    print(text)
    return 1 if notes else 0


if __name__ == "__main__":
    if sys.argv[1:] == ["child"]:
        sys.exit(child())
    sys.exit(main())
