"""``python -m transforms ddl`` as a command, in its own process (the arguments, output and exit codes:
tests/unit/cli/test_cli.py)."""

from __future__ import annotations

import os
import subprocess
import sys

from tests.support.helpers import ROOT


def test_python_dash_m_transforms(metadata: str) -> None:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    done = subprocess.run([sys.executable, "-m", "transforms", "ddl", metadata, "--location", "s3://b/p/",
                           "--format", "jsonl.gz"], capture_output=True, text=True, env=env, check=False)
    assert done.returncode == 0, done.stderr
    assert "org.openx.data.jsonserde.JsonSerDe" in done.stdout
