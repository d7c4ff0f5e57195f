"""ISA-L's CRC-32 and deflate give what zlib's readers expect: the same CRC values, standard streams."""

from __future__ import annotations

import zlib

from hypothesis import given, settings
from hypothesis import strategies as st

from transforms import fast_zlib


def test_isal_is_what_runs_here() -> None:
    """requirements.txt ships it: without it the connector still works, only slower (zlib)."""
    assert fast_zlib.isal_zlib is not None


@settings(max_examples=200, deadline=None)
@given(data=st.binary(max_size=5000), start=st.integers(0, 2**32 - 1))
def test_crc32_is_zlibs_whatever_it_continues_from(data: bytes, start: int) -> None:
    assert fast_zlib.crc32(data, start) == zlib.crc32(data, start)


def test_crc32_of_a_large_buffer_and_a_view() -> None:
    data = bytes(range(256)) * 40_000 + b"tail"
    assert fast_zlib.crc32(memoryview(data)) == zlib.crc32(data)
    assert fast_zlib.crc32(bytearray(data)) == zlib.crc32(data)


@settings(max_examples=100, deadline=None)
@given(data=st.binary(max_size=100_000), primer=st.binary(max_size=32 * 1024), level=st.sampled_from([1, 6]))
def test_a_primed_raw_stream_inflates_back_with_zlib(data: bytes, primer: bytes, level: int) -> None:
    compressor = fast_zlib.raw_deflater(level, primer)
    stream = compressor.compress(data) + compressor.flush(zlib.Z_FINISH)
    inflater = zlib.decompressobj(-15, zdict=primer) if primer else zlib.decompressobj(-15)
    assert inflater.decompress(stream) + inflater.flush() == data


def test_levels_above_one_are_zlibs_own_bytes() -> None:
    """Only level 1 is ISA-L's: asking for more compression gives exactly what zlib gives."""
    data = b"identity_id,external_id,email\n" * 5000
    ours = fast_zlib.raw_deflater(6)
    theirs = zlib.compressobj(6, zlib.DEFLATED, -15)
    expected = theirs.compress(data) + theirs.flush(zlib.Z_FINISH)
    assert ours.compress(data) + ours.flush(zlib.Z_FINISH) == expected


def test_level_one_is_isals_own_stream_of_the_same_bytes() -> None:
    row = b'8594888f-ad8c-46d4-8f2d-bfab2303a936,10000000,ben.kowalski42@example.net,"Novak, Rosa",Pune\n'
    data = b"".join(row.replace(b"0000", str(n).zfill(4).encode()) for n in range(20_000))
    ours = fast_zlib.raw_deflater(1)
    theirs = zlib.compressobj(1, zlib.DEFLATED, -15)
    isal_stream = ours.compress(data) + ours.flush(zlib.Z_FINISH)
    zlib_stream = theirs.compress(data) + theirs.flush(zlib.Z_FINISH)
    assert isal_stream != zlib_stream  # a different encoder ...
    assert zlib.decompress(isal_stream, -15) == data  # ... of the same bytes
