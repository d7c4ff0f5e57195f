"""The process's memory policy, seen from a fresh interpreter as Lambda starts one (transforms.memory):
Arrow's default pool is jemalloc once ``transforms`` is imported, unless the environment already chose
one; jemalloc hands freed pages back soon; glibc's mmap threshold stays put."""

from __future__ import annotations

import ctypes
import os
import subprocess
import sys

import pytest

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


_MAPPED_ON_ITS_OWN = """
import ctypes, sys
if sys.argv[1] == "connector":
    import transforms  # noqa: F401  (its first import sets the policy)


class MallInfo2(ctypes.Structure):
    _fields_ = [(name, ctypes.c_size_t) for name in ("arena", "ordblks", "smblks", "hblks", "hblkhd",
                                                     "usmblks", "fsmblks", "uordblks", "fordblks",
                                                     "keepcost")]


glibc = ctypes.CDLL(None)
glibc.mallinfo2.restype = MallInfo2
first = bytearray(8 << 20)  # an S3 part buffer, mapped on its own, then freed
del first
second = bytearray(8 << 20)
print(glibc.mallinfo2().hblkhd >> 20)  # MiB in blocks mapped on their own
"""


def _glibc_with_mallinfo2() -> bool:
    try:
        os.confstr("CS_GNU_LIBC_VERSION")  # raises on a C library other than glibc
    except (ValueError, OSError):
        return False
    return hasattr(ctypes.CDLL(None), "mallinfo2")


def _mapped_mib(policy: str) -> int:
    env = {name: value for name, value in os.environ.items() if name != "MALLOC_MMAP_THRESHOLD_"}
    done = subprocess.run([sys.executable, "-c", _MAPPED_ON_ITS_OWN, policy], env=env, cwd=ROOT,
                          capture_output=True, text=True, timeout=60, check=True)
    return int(done.stdout.strip())


@pytest.mark.skipif(not _glibc_with_mallinfo2(),
                    reason="glibc 2.33 or later (mallinfo2): the mmap threshold is glibc's")
def test_a_freed_part_buffer_does_not_move_the_next_one_into_the_heap() -> None:
    """glibc raises its mmap threshold to the size of a mapped block once it is freed, so the next 8 MiB
    part buffer lands in the heap, where, freed, it stays resident between live blocks. The connector
    fixes the threshold: the next one is mapped on its own too, and goes back whole when freed."""
    assert _mapped_mib("plain") < 8  # glibc's own policy: the second buffer is in the heap
    assert _mapped_mib("connector") >= 8
