"""The process's memory policy, set at the first import of ``transforms``, before pyarrow loads.

Arrow's C++ default pool (what Parquet's page and compression buffers and ORC's writer take, whatever
pool Python sets) is jemalloc, like the pool the columnar writers set (``columnar``), so the pages they
free go back soon (``JEMALLOC_CONF``) instead of staying in a second allocator (mimalloc, the wheels'
default).
Arrow reads the choice once, when it first needs a pool: hence here, before any module imports pyarrow.
An ``ARROW_DEFAULT_MEMORY_POOL`` already in the environment wins.

jemalloc hands freed pages back in two steps, each after its decay: dirty pages are first marked free
(``MADV_FREE``), which leaves them counted in the process's RSS until the kernel needs them, and only
then dropped (``MADV_DONTNEED``). Arrow builds it with 1 s for each (a row group freed stays in RSS for
up to 2 s); ``JEMALLOC_CONF`` (read by jemalloc when it starts, from ``JE_ARROW_MALLOC_CONF``) drops
dirty pages after 250 ms in one step. Not at once (0 ms): every free then became a madvise, and on two
cores each one interrupts the other core to flush its TLB (.jsonl 50 MB/s against 57, with 7.8 s of
kernel CPU against 2.2, 1 GiB, 2 cores). Not via ``pa.jemalloc_set_decay_ms``, as before: that sets the
decay of arenas made after the call only, and takes both steps. Measured side by side (bench/ranged.py,
Parquet, capped both ways, 2 cores, three rounds, issue 21): peak RSS 301-309 MB at 256 MiB and 334-351
at 1 GiB, against 326-333 and 374-389 with 250 ms for each step, at the same walls and CPU.

Measured (bench/ranged.py, Parquet, 256 MiB and 1 GiB, 2 cores, same run): peak RSS 398 and 421 MB
with mimalloc, 381 and 394 MB with jemalloc, at the same speed (81 MB/s at 1 GiB either way).

glibc's malloc (every Python object) gets one arena, not one per thread (up to 8 per core). The
download's threads allocate the pieces that the reader's thread frees; with an arena each, freed
space stayed in the arena of the thread that allocated it, and peak RSS of a `.csv` passthrough grew
with the file (120 -> 153 MB from 256 MiB to 1 GiB, still rising). With one arena it levels off
(117 -> 137 MB, level after the first second) at the same speed: Python's threads take turns on the
GIL anyway, and Arrow's own threads allocate from jemalloc. glibc consults the limit whenever a thread
needs an arena, so it is set here, before the connector starts any; a ``MALLOC_ARENA_MAX`` in the
environment wins.

glibc's mmap threshold is fixed at 4 MiB (a ``MALLOC_MMAP_THRESHOLD_`` in the environment wins). By default
it moves: freeing a block that was mapped on its own raises the threshold to that block's size, so after
the first S3 part buffer (8 MiB) was freed, later ones were carved from the heap, between the download's
pieces, where a freed one stays resident until ``return_free_pages`` finds whole pages to hand back. Over
a 1 GiB `.parquet` run the heap's resident size crept from 52 to 90-107 MB, most of it free. With the
threshold fixed, blocks of 4 MiB and more (part buffers, reused while the upload runs) are mapped on
their own and leave nothing behind: the heap stayed at 50-68 MB, with the read-ahead no longer creeping
(``sources.ranged``; a sampler at each row group, 2 cores, capped both ways, issue 21). Below 4 MiB is
what is allocated and freed most (the reader's 1 MiB pieces, the download's 128 KiB reads): mapping each
of those on its own cost speed in page faults (a 256 KiB threshold: `.parquet` 4x walls 5.0-5.5 s
against 4.5-4.8; earlier, before the S3 sink reused its part buffers, a fifth of its speed).
"""

from __future__ import annotations

import ctypes
import os

ARROW_POOL = "jemalloc"
JEMALLOC_CONF = "dirty_decay_ms:250,muzzy_decay_ms:0"
GLIBC_ARENAS = 1
GLIBC_MMAP_THRESHOLD = 4 * 1024 * 1024
_M_ARENA_MAX = -8  # glibc's malloc.h
_M_MMAP_THRESHOLD = -3


_GLIBC: ctypes.CDLL | None = None  # the process's C library, when it is glibc


def configure() -> None:
    os.environ.setdefault("ARROW_DEFAULT_MEMORY_POOL", ARROW_POOL)
    os.environ.setdefault("JE_ARROW_MALLOC_CONF", JEMALLOC_CONF)
    limit_glibc_arenas(GLIBC_ARENAS)
    fix_glibc_mmap_threshold(GLIBC_MMAP_THRESHOLD)


def limit_glibc_arenas(arenas: int) -> bool:
    """Whether glibc took the limit: False on another C library, or when the environment set one."""
    return _set_glibc_option(_M_ARENA_MAX, arenas, "MALLOC_ARENA_MAX")


def fix_glibc_mmap_threshold(size: int) -> bool:
    """Whether glibc took the threshold (which also stops it moving): False on another C library, or
    when the environment set one."""
    return _set_glibc_option(_M_MMAP_THRESHOLD, size, "MALLOC_MMAP_THRESHOLD_")


def _set_glibc_option(option: int, value: int, environment_name: str) -> bool:
    """``mallopt(option, value)`` unless the environment already chose (glibc reads it at start-up)."""
    glibc = _load_glibc()
    if glibc is None or os.environ.get(environment_name):
        return False
    return bool(glibc.mallopt(option, value))


def _load_glibc() -> ctypes.CDLL | None:
    """The process's C library, when it is glibc (loaded once)."""
    global _GLIBC
    if _GLIBC is None:
        try:
            os.confstr("CS_GNU_LIBC_VERSION")  # raises on a C library other than glibc (musl, macOS)
            library = ctypes.CDLL(None)
            library.mallopt  # noqa: B018  (glibc's, checked here: a lookup that fails raises AttributeError)
            _GLIBC = library
        except (ValueError, OSError, AttributeError):
            return None
    return _GLIBC


def return_free_pages() -> None:
    """Hand the free pages inside glibc's heap back to the system (``malloc_trim``).

    The typed formats free and reallocate blocks of many sizes (ORC's own buffers, Python's objects);
    the holes left between live blocks stay resident, and over a long file peak RSS crept up by 20-40
    MB while live memory did not. Called after each row group (``columnar``) and every 128 MiB of a
    passthrough (``registry.copy_csv``), this costs a few milliseconds a call (the pages come back as
    they are reused). Nothing happens on another C library.
    """
    if _GLIBC is not None:
        _GLIBC.malloc_trim(0)
