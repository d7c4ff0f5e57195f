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
