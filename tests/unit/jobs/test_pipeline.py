"""The disk-write audit that tests/integration/pipeline/test_pipeline.py relies on can fail."""

from __future__ import annotations


def test_the_audit_does_see_disk_writes(disk_audit, tmp_path) -> None:
    """Proof that the audit the pipeline tests use can fail."""
    (tmp_path / "x").write_bytes(b"written")
    assert str(tmp_path / "x") in disk_audit.writes
