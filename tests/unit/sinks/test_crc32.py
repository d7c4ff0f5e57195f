"""The object's CRC32 combined from its parts' equals zlib's CRC32 of the whole."""

from __future__ import annotations

import zlib

import pytest
from hypothesis import given
from hypothesis import strategies as st

from transforms.sinks.crc32 import crc32_combine, python_crc32_combine


@given(st.lists(st.binary(max_size=300), min_size=1, max_size=8))
def test_combined_parts_equal_the_whole(parts: list[bytes]) -> None:
    combined = 0
    for part in parts:
        combined = crc32_combine(combined, zlib.crc32(part), len(part))
    assert combined == zlib.crc32(b"".join(parts))


def test_a_part_of_several_mib_combines_like_a_small_one() -> None:
    first, second = b"ci360," * 1000, bytes(range(256)) * (5 * 4096 + 17)  # a 5 MiB part and change
    assert crc32_combine(zlib.crc32(first), zlib.crc32(second), len(second)) == zlib.crc32(first + second)
    assert crc32_combine(zlib.crc32(first), zlib.crc32(b""), 0) == zlib.crc32(first)


@pytest.mark.parametrize("length", [0, 1, 8 * 1024 * 1024, 5 * 1024**4, 2**40 + 12345])
def test_isal_and_the_fallback_agree_whatever_the_length(length: int) -> None:
    for first, second in [(0, 0), (0xFFFFFFFF, 1), (0x12345678, 0x9ABCDEF0)]:
        assert crc32_combine(first, second, length) == python_crc32_combine(first, second, length)


def test_isal_does_the_combining_where_it_is_installed() -> None:
    from isal import isal_zlib

    assert crc32_combine is isal_zlib.crc32_combine
