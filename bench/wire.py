"""The wire alone: how fast the bench's paced source gives its bytes, with nothing done to them.

``python -m bench.wire`` reads the 4x data file (bench/ranged.py's, 4 x ``BENCH_RANGED_MB``) from
bench/rangeserver.py at ``BENCH_CAP_MBPS`` per connection, and throws the bytes away: once as SAS's
connector reads it (one GET) and once with our ranged reader (``transforms.sources.ranged``) at each of
``BENCH_WIRE_CONNECTIONS`` ("8,12,16"), in turn for ``BENCH_ROUNDS`` rounds (3), each a process of its
own pinned to the same cores as the contenders (``taskset``, ``BENCH_WIRE_CORES``, 2). The medians go
to BENCHMARKS.md, between this module's markers.

Why: a capped run's "download" floor in BENCHMARKS.md is the bytes over connections x cap, a pace no
connection quite keeps on this machine (the source's pacing, its threads and ours share two cores). This
measures what the bare download takes here, so that a contender's wall can be set against the wire as it
is, not as it is modelled: a ``.csv`` landing cannot be faster than its download alone.
"""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import time

from bench import data
from bench.report import write_section
from bench.run import MB, ROOT, WORK, code_revision, loadavg, machine, segment_files
from devstack.localstack import free_ports

MIB = 1 << 20
CHILD = "BENCH_WIRE_CHILD"
BEGIN = "<!-- bench/wire.py writes from here: make bench -->"
END = "<!-- bench/wire.py writes up to here -->"


def _read_all(url: str, connections: int) -> int:
    """Read the data file and discard it: one GET (SAS's way) when ``connections`` is 0."""
    import urllib3

    from transforms.settings import Settings
    from transforms.sources.http import HttpSource
    from transforms.sources.ranged import open_ranged

    got = 0
    if connections == 0:
        with urllib3.PoolManager().request("GET", url, preload_content=False) as response:
            for chunk in response.stream(8192):  # as SAS's connector reads (bench/contender.py)
                got += len(chunk)
        return got
    settings = Settings.from_env({"s3_bucket_name": "bench-wire", "IS_LOCAL": "true"})
    http = HttpSource.from_settings(settings)
    with open_ranged(http, url, "data", connections=connections,
                     range_size=settings.download_range_bytes) as stream:
        while chunk := stream.read(MIB):
            got += len(chunk)
    return got


def child() -> None:
    url, connections = sys.argv[1], int(sys.argv[2])
    started = time.perf_counter()
    got = _read_all(url, connections)
    print(f"{got} {time.perf_counter() - started:.4f}", flush=True)


def main() -> None:
    mib = int(os.environ.get("BENCH_RANGED_MB", "128"))
    cap_mbps = int(os.environ.get("BENCH_CAP_MBPS", "60"))
    rounds = int(os.environ.get("BENCH_ROUNDS", "3"))
    cores = int(os.environ.get("BENCH_WIRE_CORES", "2"))
    counts = [0] + [int(c) for c in os.environ.get("BENCH_WIRE_CONNECTIONS", "8,12,16").split(",")]
    paths = segment_files(4, mib * MIB)
    metadata = WORK / "metadata.json"
    metadata.write_bytes(data.metadata_json())
    (port,) = free_ports(1)
    source = subprocess.Popen([sys.executable, "-m", "bench.rangeserver", "--port", str(port), "--metadata",
                               str(metadata), *map(str, paths)], cwd=ROOT, stdout=subprocess.PIPE)
    try:
        assert source.stdout is not None and source.stdout.readline() == b"ready\n"
        url = f"http://127.0.0.1:{port}/data?cap={cap_mbps * MB}"
        pin = ["taskset", "-c", ",".join(str(c) for c in range(cores))]
        seconds: dict[int, list[float]] = {count: [] for count in counts}
        size = 0
        before = loadavg()
        for _ in range(rounds):
            for count in counts:
                out = subprocess.run([*pin, sys.executable, "-m", "bench.wire", url, str(count)], cwd=ROOT,
                                     env={**os.environ, CHILD: "1"}, capture_output=True, text=True,
                                     check=True, timeout=600).stdout.split()
                size = int(out[0])
                seconds[count].append(float(out[1]))
        after = loadavg()
    finally:
        source.terminate()
        source.wait(10)
    rows = []
    for count in counts:
        median = statistics.median(seconds[count])
        wire = size / (max(count, 1) * cap_mbps * MB)
        name = "one GET (SAS's connector)" if count == 0 else "ours, ranged (transforms.sources.ranged)"
        rows.append(f"| {name} | {max(count, 1)} | {median:.2f} | {size / median / MB:.0f} | "
                    f"{size / median / MB / max(count, 1):.0f} | {wire / median:.0%} |")
    section = "\n".join([
        BEGIN,
        "## The wire alone: the bare download (`make bench`, `python -m bench.wire`)",
        "",
        f"{machine()}; code {code_revision()}; load {before} before, {after} after. The 4x data file "
        f"({size / MB:,.0f} MB) from bench/rangeserver.py at {cap_mbps} MB/s per connection, read and thrown "
        f"away by a process pinned to {cores} core(s), median of {rounds} rounds. A capped run's `download` "
        "floor above is the modelled wire (bytes over connections x cap); this is what the bare download "
        "takes on this machine, the floor a `.csv` landing actually has.",
        "",
        "| reader | connections | seconds | MB/s | MB/s per connection | of the modelled wire |",
        "|---|---:|---:|---:|---:|---:|",
        *rows,
        END,
    ])
    write_section(BEGIN, END, section)
    print(section)


if __name__ == "__main__":
    if os.environ.get(CHILD):
        child()
    else:
        main()
