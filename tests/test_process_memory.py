"""The process's memory policy (transforms.memory), seen from a fresh interpreter as Lambda starts one:
Arrow's default pool is jemalloc, and buffers of a MiB or more go back to the system when freed, even
after a larger one has been freed (glibc would otherwise keep them in its heap, holes and all)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

PROBE = """
import json, sys
if sys.argv[1] == "transforms":
    import transforms  # noqa: F401
import pyarrow as pa

def rss():
    with open("/proc/self/status") as handle:
        return next(int(line.split()[1]) * 1024 for line in handle if line.startswith("VmRSS:"))

big = b"x" * (16 << 20)
del big  # glibc, left alone, now serves anything below 16 MiB from its heap
parts = [b"x" * (2 << 20) for _ in range(40)]  # 80 MiB, written (calloc's pages would not be)
before = rss()
del parts[::2]  # every other one freed: holes in a heap, or mappings handed back
print(json.dumps({"pool": pa.default_memory_pool().backend_name, "returned": before - rss()}))
"""


def probe(*argv: str, **env: str) -> dict:
    environment = {k: v for k, v in os.environ.items() if k != "ARROW_DEFAULT_MEMORY_POOL"} | env
    done = subprocess.run([sys.executable, "-c", PROBE, *argv], cwd=ROOT, env=environment, check=True,
                          capture_output=True, text=True, timeout=60)
    return json.loads(done.stdout)


def test_freed_buffers_go_back_and_arrow_allocates_with_jemalloc() -> None:
    seen = probe("transforms")
    assert seen["pool"] == "jemalloc"
    assert seen["returned"] >= 36 << 20  # the 20 freed parts of 2 MiB, nearly all of it


def test_an_arrow_pool_chosen_in_the_environment_still_wins() -> None:
    assert probe("transforms", ARROW_DEFAULT_MEMORY_POOL="system")["pool"] == "system"
