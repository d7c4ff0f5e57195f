"""The process's memory policy: one glibc arena, so what one thread frees another can reuse (a fixed mmap
threshold, seen from a fresh interpreter: tests/integration/pipeline/test_process_memory.py)."""

from __future__ import annotations

import ctypes
import os
import threading

import pytest

import transforms  # noqa: F401  (its first import sets the policy)
from transforms import memory


def _glibc() -> bool:
    try:
        return bool(os.confstr("CS_GNU_LIBC_VERSION"))
    except (ValueError, OSError):
        return False


@pytest.mark.skipif(not _glibc() or bool(os.environ.get("MALLOC_ARENA_MAX")),
                    reason="glibc's arenas only: another C library, or the environment chose a limit")
def test_threads_share_one_glibc_arena(capfd: pytest.CaptureFixture[str]) -> None:
    """Each new thread would get an arena of its own (up to 8 per core); glibc's own report says
    there is only the main one, after threads that each allocated and freed."""
    together = threading.Barrier(6, timeout=10)

    def churn() -> None:
        kept = [bytes(70_000) for _ in range(20)]
        together.wait()  # all alive at once: none can take over an arena another left
        del kept

    threads = [threading.Thread(target=churn) for _ in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    capfd.readouterr()
    ctypes.CDLL(None).malloc_stats()  # writes one "Arena N:" block per arena to standard error
    report = capfd.readouterr().err
    assert "Arena 0:" in report
    assert "Arena 1:" not in report


def test_an_arena_limit_in_the_environment_wins(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MALLOC_ARENA_MAX", "4")
    assert memory.limit_glibc_arenas(1) is False


def _rss_mb() -> float:
    with open("/proc/self/status", encoding="ascii") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    raise AssertionError("no VmRSS")


@pytest.mark.skipif(not _glibc(), reason="malloc_trim is glibc's")
def test_returning_free_pages_gives_the_holes_between_live_blocks_back() -> None:
    """Blocks freed between live ones stay resident until trimmed: what made a long file's peak creep."""
    blocks = [bytes(64 * 1024) for _ in range(2000)]  # 128 MiB, below any mmap threshold: in the heap
    del blocks[::2]  # 64 MiB of holes, each between two live blocks
    before = _rss_mb()
    memory.return_free_pages()
    after = _rss_mb()
    assert before - after > 32, f"RSS {before:.0f} -> {after:.0f} MB"
    assert len(blocks) == 1000  # the live half is still there


def test_an_mmap_threshold_in_the_environment_wins(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MALLOC_MMAP_THRESHOLD_", "131072")
    assert memory.fix_glibc_mmap_threshold(memory.GLIBC_MMAP_THRESHOLD) is False
