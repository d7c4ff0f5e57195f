"""The process's memory policy, set once at the first import of ``transforms`` (before pyarrow loads).

Measured on the bench (bench/ranged.py, Parquet, 2 cores), each alone: peak RSS 434 MB at 1x and 489 MB
at 4x by default; 380 and 389 MB with glibc's mmap threshold fixed at 1 MiB; 405 and 450 MB with Arrow's
default pool on jemalloc.

- glibc: a buffer of 1 MiB or more (an S3 part, a block of Parquet pages, a range of the download) gets
  its own mapping, handed back to the system when freed. By default glibc raises its threshold to the
  largest buffer freed so far, after which such buffers come from its heaps, where the holes they leave
  are kept: RSS creeps up as the file grows, more so with many threads.
- Arrow: the C++ default pool (what Parquet's page buffers and ORC's writer take, whatever pool Python
  sets) is jemalloc, like the pool the columnar writers set, so freed pages go back at once
  (``columnar`` sets decay 0) instead of staying in a second allocator. Read when Arrow first loads,
  hence here; an ``ARROW_DEFAULT_MEMORY_POOL`` in the environment still wins.
"""

from __future__ import annotations

import ctypes
import os

MMAP_THRESHOLD_BYTES = 1024 * 1024
_M_MMAP_THRESHOLD = -3  # glibc's mallopt parameter (malloc.h)


def configure() -> bool:
    """Apply the policy; True if glibc took the threshold (False elsewhere: musl, macOS)."""
    os.environ.setdefault("ARROW_DEFAULT_MEMORY_POOL", "jemalloc")
    try:
        mallopt = ctypes.CDLL(None).mallopt
    except (OSError, AttributeError):
        return False
    mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
    return bool(mallopt(_M_MMAP_THRESHOLD, MMAP_THRESHOLD_BYTES))
