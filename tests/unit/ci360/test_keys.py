from __future__ import annotations

import pytest

from transforms.ci360.keys import validate_key
from transforms.errors import ValidationError


@pytest.mark.parametrize("key", ["a.csv", "dir/sub/a.csv.gz", "dt=2026-11-23/x.parquet", "ünï cödé.csv",
                                 "a..b.csv"])
def test_ordinary_keys_pass_unchanged(key: str) -> None:
    assert validate_key(key) == key


@pytest.mark.parametrize(("key", "says"), [
    ("/abs.csv", "start with '/'"),
    ("a/../b.csv", "'..'"),
    ("./a.csv", "'..'"),
    ("a\nb.csv", "control"),
    ("folder/", "folder"),
    ("é" * 513, "1024"),
])
def test_keys_s3_or_the_user_would_regret_are_refused(key: str, says: str) -> None:
    with pytest.raises(ValidationError) as raised:
        validate_key(key)
    assert says in raised.value.message
    assert raised.value.details == [{"field": "sendParameters.s3_filename"}]
