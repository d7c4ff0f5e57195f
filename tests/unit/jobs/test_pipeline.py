"""The Python-level disk-write audit (``disk_audit``) that tests/integration/cli/test_cli_transfer.py
relies on can fail. (The pipeline's own audit is the kernel's count of bytes written:
tests/integration/pipeline/test_pipeline.py.)"""

from __future__ import annotations


def test_the_audit_does_see_disk_writes(disk_audit, tmp_path) -> None:
    """Proof that the audit the command line's test uses can fail."""
    (tmp_path / "x").write_bytes(b"written")
    assert str(tmp_path / "x") in disk_audit.writes
