"""One format's conversion alone: a local CSV into a null sink, in this process, timed.

``python -m bench.core FORMAT CSV`` prints wall, CPU (all threads) per GB, output size, rows and VmHWM.
With ``BENCH_CODE=<dir>`` transforms/ comes from that tree (``git archive <commit> transforms | tar -x -C
<dir>``), so that two versions are timed side by side, alternating, on the same file, e.g. under
``taskset -c 0,1``. Made to be profiled: ``py-spy record --native -f raw -o out.raw -- python -m
bench.core parquet <csv>`` shows where the CPU goes (pyarrow's own threads included when they run
Python's callbacks; its pure C++ pool threads are not sampled).
"""

from __future__ import annotations

import os
import resource
import sys
import time

if os.environ.get("BENCH_CODE"):
    sys.path.insert(0, os.environ["BENCH_CODE"])

from bench.contender import _NotDeployed  # noqa: E402

sys.meta_path.insert(0, _NotDeployed())  # type: ignore[arg-type]  (no pandas, as deployed)

import transforms.formats.columnar  # noqa: E402, F401 (imports are not part of the conversion)
from bench import data  # noqa: E402
from bench.conversion import NullSink  # noqa: E402
from transforms.ci360.layout import parse_layout  # noqa: E402
from transforms.formats.registry import WriteContext, WriteOptions, format_named  # noqa: E402
from transforms.schema.columns import build_schema  # noqa: E402
from transforms.sources.local import LocalStream  # noqa: E402


def main() -> int:
    fmt, path = sys.argv[1], sys.argv[2]
    layout = parse_layout(data.metadata_json())
    ctx = WriteContext(layout, build_schema(layout, {}), WriteOptions())
    size = os.path.getsize(path)
    sink = NullSink()
    started, before = time.perf_counter(), resource.getrusage(resource.RUSAGE_SELF)
    with open(path, "rb") as handle:
        report = format_named(fmt).write(LocalStream(handle, size), sink, ctx)  # type: ignore[arg-type]
    after = resource.getrusage(resource.RUSAGE_SELF)
    wall = time.perf_counter() - started
    cpu = after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime
    with open("/proc/self/status", encoding="ascii") as status:
        hwm = next(int(line.split()[1]) for line in status if line.startswith("VmHWM")) // 1024
    code = os.environ.get("BENCH_CODE", "working tree")
    print(f"{fmt} ({code}): wall {wall:.2f} s, CPU {cpu:.2f} s ({cpu / (size / 1e9):.1f} s/GB), "
          f"out {sink.n / 1e6:.0f} MB, rows {report.rows}, VmHWM {hwm} MB")
    return 0


if __name__ == "__main__":
    sys.exit(main())
