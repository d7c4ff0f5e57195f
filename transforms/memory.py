"""The process's memory policy, set at the first import of ``transforms``, before pyarrow loads.

Arrow's C++ default pool (what Parquet's page and compression buffers and ORC's writer take, whatever
pool Python sets) is jemalloc, like the pool the columnar writers set (``columnar``, decay 0), so the
pages they free go back at once instead of staying in a second allocator (mimalloc, the wheels' default).
Arrow reads the choice once, when it first needs a pool: hence here, before any module imports pyarrow.
An ``ARROW_DEFAULT_MEMORY_POOL`` already in the environment wins.

Measured (bench/ranged.py, Parquet, 256 MiB and 1 GiB, 2 cores, same run): peak RSS 398 and 421 MB
with mimalloc, 381 and 394 MB with jemalloc, at the same speed (81 MB/s at 1 GiB either way). Fixing
glibc's mmap threshold (``MALLOC_MMAP_THRESHOLD_``) gave less (390 and 404 MB) and, before the S3 sink
reused its part buffers, cost a fifth of Parquet's speed: not set.
"""

from __future__ import annotations

import os

ARROW_POOL = "jemalloc"


def configure() -> None:
    os.environ.setdefault("ARROW_DEFAULT_MEMORY_POOL", ARROW_POOL)
