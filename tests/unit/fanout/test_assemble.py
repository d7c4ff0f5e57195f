"""How range objects become parts: copies wherever S3 allows (every part but the last at least 5 MiB, a
copy at most 5 GiB), small objects carried into 5 MiB parts, every byte exactly once and in order."""

from __future__ import annotations

import zlib

from hypothesis import given
from hypothesis import strategies as st

from transforms.fanout.assemble import MAX_COPY_PART, MIN_PART, Piece, combined_crc32, plan_parts

MIB = 1024 * 1024
GIB = 1024 * MIB


def pieces(sizes: list[int]) -> list[Piece]:
    return [Piece(f"r{number}", size, "AAAAAA==", f'"{number}"') for number, size in enumerate(sizes)]


def check(sizes: list[int]) -> list[list[tuple[str, Piece, int, int]]]:
    parts = plan_parts(pieces(sizes))
    covered = [(piece.key, first, end) for part in parts for _, piece, first, end in part]
    expected, previous = [], None
    for piece in pieces(sizes):  # every byte of every piece exactly once, in order
        at = 0
        for key, first, end in covered:
            if key == piece.key:
                assert first == at
                at = end
        assert at == piece.size
        expected.append(piece.key)
    order = [key for key, _, _ in covered]
    assert order == sorted(order, key=lambda key: int(key[1:]))
    for number, part in enumerate(parts):
        size = sum(end - first for _, _, first, end in part)
        if number < len(parts) - 1:
            assert size >= MIN_PART
        if part[0][0] == "copy":
            assert len(part) == 1 and size <= MAX_COPY_PART
        else:
            assert size <= MIN_PART or len(part) == 1
        previous = part
    del previous
    return parts


@given(st.lists(st.one_of(st.integers(0, 12 * MIB), st.integers(4 * GIB, 11 * GIB)), min_size=1, max_size=12))
def test_parts_obey_s3s_limits_and_cover_every_byte_once(sizes: list[int]) -> None:
    check(sizes)


def test_large_objects_are_copied_and_small_ones_carried() -> None:
    parts = check([8 * MIB, 1 * MIB, 1 * MIB, 12 * MIB, 6 * GIB, 2 * MIB])
    kinds = [[kind for kind, *_ in part] for part in parts]
    # 8 MiB copied; 1+1 MiB carried with the first 3 MiB of the next; its other 9 MiB copied; 6 GiB in two
    # copies; the last 2 MiB copied as the last part.
    assert kinds == [["copy"], ["read", "read", "read"], ["copy"], ["copy"], ["copy"], ["copy"]]


def test_the_combined_crc32_is_the_crc32_of_the_concatenation() -> None:
    import base64

    blobs = [b"header,row\n", b"x" * 100_000, b"", b'"a\nb",c\n' * 999]
    made = [Piece(str(n), len(b), base64.b64encode(zlib.crc32(b).to_bytes(4, "big")).decode(), "")
            for n, b in enumerate(blobs)]
    assert combined_crc32(made) == base64.b64encode(zlib.crc32(b"".join(blobs)).to_bytes(4, "big")).decode()
