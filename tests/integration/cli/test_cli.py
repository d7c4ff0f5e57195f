"""``python -m transforms ddl`` as a command, in its own process (the arguments, output and exit codes:
tests/unit/cli/test_cli.py)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from transforms.cli.main import main

METADATA = json.dumps([
    {"columnName": "Customer ID", "dataType": "NUMERIC"},
    {"columnName": "email", "dataType": "CHARACTER"},
    {"columnName": "last_seen", "dataType": "DATETIME"},
]).encode()


@pytest.fixture
def metadata(tmp_path: Path) -> str:
    path = tmp_path / "audience_metadata.json"
    path.write_bytes(METADATA)
    return str(path)


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_python_dash_m_transforms(metadata: str) -> None:
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[3])}
    done = subprocess.run([sys.executable, "-m", "transforms", "ddl", metadata, "--location", "s3://b/p/",
                           "--format", "jsonl.gz"], capture_output=True, text=True, env=env, check=False)
    assert done.returncode == 0, done.stderr
    assert "org.openx.data.jsonserde.JsonSerDe" in done.stdout
