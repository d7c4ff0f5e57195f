"""One fan-out step in a fresh process, as one Lambda invocation: ``python -m bench.fanout_worker`` with
BENCH_FANOUT set to ``{"step": "plan", "job": {...}}``, ``{"step": "range", "state": {...}, "item": {...}}``
or ``{"step": "check", "state": {...}}``.

It runs ``transforms.fanout.plan``, ``land_range`` or ``check_ranges`` once against the benchmark's
servers (the standard AWS variables point at bench/sinkserver.py) and prints ``BENCH_RESULT {...}``
last: the step's output, its wall and CPU time around the step, and its VmHWM.
"""

from __future__ import annotations

import json
import os
import resource
import sys
import time

RESULT_MARK = "BENCH_RESULT "


def vm_hwm() -> int:
    with open("/proc/self/status", encoding="ascii") as handle:
        for line in handle:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
    return 0


def main() -> int:
    spec = json.loads(os.environ["BENCH_FANOUT"])
    from transforms import fanout
    from transforms.aws import client
    from transforms.ci360.payload import Job
    from transforms.jobs.services import Services
    from transforms.settings import Settings
    from transforms.sources.http import HttpSource

    settings = Settings.from_env()
    services = Services(s3=client("s3"), http=HttpSource.from_settings(settings))
    cpu, wall = time.process_time(), time.monotonic()
    if spec["step"] == "plan":
        output = fanout.plan(Job(**spec["job"]), settings, services)
    elif spec["step"] == "check":
        output = fanout.check_ranges(spec["state"], settings, services)
    else:
        output = fanout.land_range(spec["state"], spec["item"], settings, services)
    usage = resource.getrusage(resource.RUSAGE_SELF)
    result = {"output": output, "wall": time.monotonic() - wall, "cpu": time.process_time() - cpu,
              "peak_rss": vm_hwm(), "user": usage.ru_utime}
    print(RESULT_MARK + json.dumps(result), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
