"""Encryption settings (README, "Encryption"): which header the sink is told to send, and the
contradictions refused. What lands encrypted how is tests/integration/s3_sink/test_encryption.py.
"""

from __future__ import annotations

import pytest

from transforms.errors import ConfigurationError
from transforms.jobs.pipeline import encryption
from transforms.settings import Settings


def test_no_encryption_header_is_sent_by_default() -> None:
    assert encryption(Settings.from_env({"s3_bucket_name": "b"})) == {}
    # A key named for the grant only (the bucket's default is SSE-KMS under it): still no header.
    assert encryption(Settings.from_env({"s3_bucket_name": "b", "kms_key_id": "arn:k",
                                         "encryption": "bucket-default"})) == {}


@pytest.mark.parametrize(("env", "says"), [
    ({"encryption": "sse-kms"}, "needs kms_key_id"),
    ({"encryption": "sse-s3", "kms_key_id": "arn:k"}, "contradicts kms_key_id"),
    ({"encryption": "AES128"}, "must be one of bucket-default, sse-s3, sse-kms"),
])
def test_contradictory_or_unknown_encryption_settings_are_refused(env: dict[str, str], says: str) -> None:
    with pytest.raises(ConfigurationError, match=says):
        Settings.from_env({"s3_bucket_name": "b", **env})
