"""Arrow's default pool, seen from a fresh interpreter as Lambda starts one (transforms.memory): jemalloc
once ``transforms`` is imported, unless the environment already chose one."""

from __future__ import annotations

import os
import subprocess
import sys

from tests.support.helpers import ROOT

PROBE = """
import sys
if sys.argv[1] == "transforms":
    import transforms  # noqa: F401
import pyarrow as pa
print(pa.default_memory_pool().backend_name)
"""


def pool(*argv: str, **env: str) -> str:
    environment = {k: v for k, v in os.environ.items() if k != "ARROW_DEFAULT_MEMORY_POOL"} | env
    done = subprocess.run([sys.executable, "-c", PROBE, *argv], cwd=ROOT, env=environment, check=True,
                          capture_output=True, text=True, timeout=60)
    return done.stdout.strip()


def test_arrow_allocates_with_jemalloc_once_transforms_is_imported() -> None:
    assert pool("transforms") == "jemalloc"
    assert pool("pyarrow-alone") != "jemalloc"  # what the wheel would choose by itself


def test_an_arrow_pool_chosen_in_the_environment_still_wins() -> None:
    assert pool("transforms", ARROW_DEFAULT_MEMORY_POOL="system") == "system"


# Arrow buffers of 256 KiB (a piece's columns are of that order), 64 MiB in all, written, then freed:
# how long until the process's RSS is 48 MiB lower, if that happens within the wait given.
RETURN_PROBE = """
import os, sys, time
if sys.argv[1] == "transforms":
    import transforms
import pyarrow as pa

def rss():
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")

buffers = []
for _ in range(256):
    buffer = pa.allocate_buffer(256 << 10)
    memoryview(buffer).cast("B")[:] = b"\\x01" * (256 << 10)
    buffers.append(buffer)
held = rss()
buffers.clear()
start = time.monotonic()
while time.monotonic() - start < float(sys.argv[2]):
    if rss() < held - (48 << 20):
        print("returned")
        break
    time.sleep(0.02)
else:
    print("kept")
"""
RETURN_WAIT_S = 1.4  # 250 ms of decay plus room for a busy machine; Arrow's own 1 s + 1 s took 1.7-1.8 s


def returned(*argv: str, **env: str) -> str:
    environment = {k: v for k, v in os.environ.items()
                   if k not in ("ARROW_DEFAULT_MEMORY_POOL", "JE_ARROW_MALLOC_CONF")} | env
    done = subprocess.run([sys.executable, "-c", RETURN_PROBE, *argv, str(RETURN_WAIT_S)], cwd=ROOT,
                          env=environment, check=True, capture_output=True, text=True, timeout=60)
    return done.stdout.strip()


def test_freed_arrow_memory_leaves_the_rss_within_a_second_once_transforms_is_imported() -> None:
    """jemalloc's decay as transforms.memory sets it (250 ms, then dropped at once), not Arrow's own (1 s
    marked free, still counted in RSS, then 1 s more): a freed row group does not hold peak memory up."""
    assert returned("transforms") == "returned"
    assert returned("transforms", JE_ARROW_MALLOC_CONF="dirty_decay_ms:1000,muzzy_decay_ms:1000") == "kept"
