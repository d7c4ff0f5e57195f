"""An independent look inside ORC files: the raw seconds and nanoseconds a timestamp column stores.

pyarrow (and every reader built on ORC's C++ library) hides the stored fields behind a decoded
value, so a file that Java readers refuse can look perfect through them. This parses the file
itself, following the ORC v1 specification (https://orc.apache.org/specification/ORCv1/): the
postscript, footer and stripe footers (protocol buffers, decoded by hand), the stream layout, and
the integer run-length encoding v2 of the DATA (seconds) and SECONDARY (nanoseconds) streams. It
then decodes values as Trino's ORC reader (Athena's) does, nanosecond range check included.

Only what our writer produces is supported: compression NONE or ZLIB, RLE v2 (DIRECT_V2).
"""

from __future__ import annotations

import zlib
from collections.abc import Iterator
from dataclasses import dataclass

ORC_EPOCH_SECONDS = 1_420_070_400  # 2015-01-01 00:00:00 UTC: stored seconds are relative to it
_KINDS = {0: "PRESENT", 1: "DATA", 2: "LENGTH", 3: "DICTIONARY_DATA", 4: "DICTIONARY_COUNT",
          5: "SECONDARY", 6: "ROW_INDEX", 7: "BLOOM_FILTER", 8: "BLOOM_FILTER_UTF8"}
_TYPE_KINDS = {0: "boolean", 1: "byte", 2: "short", 3: "int", 4: "long", 5: "float", 6: "double",
               7: "string", 8: "binary", 9: "timestamp", 10: "list", 11: "map", 12: "struct",
               13: "union", 14: "decimal", 15: "date", 16: "varchar", 17: "char",
               18: "timestamp_instant"}
_COMPRESSION = {0: "NONE", 1: "ZLIB", 2: "SNAPPY", 3: "LZO", 4: "LZ4", 5: "ZSTD"}


# -- protocol buffers, just enough -----------------------------------------------------------------

def _varint(data: bytes, pos: int) -> tuple[int, int]:
    result = shift = 0
    while True:
        byte = data[pos]
        pos += 1
        result |= (byte & 0x7F) << shift
        if byte < 0x80:
            return result, pos
        shift += 7


def _fields(message: bytes) -> Iterator[tuple[int, int | bytes]]:
    """(field number, value) for each field: an int for varints, bytes for length-delimited."""
    pos = 0
    while pos < len(message):
        key, pos = _varint(message, pos)
        number, wire = key >> 3, key & 7
        if wire == 0:
            value, pos = _varint(message, pos)
            yield number, value
        elif wire == 2:
            length, pos = _varint(message, pos)
            yield number, message[pos:pos + length]
            pos += length
        elif wire == 1:
            yield number, int.from_bytes(message[pos:pos + 8], "little")
            pos += 8
        elif wire == 5:
            yield number, int.from_bytes(message[pos:pos + 4], "little")
            pos += 4
        else:
            raise ValueError(f"unsupported protobuf wire type {wire}")


def _decompress(data: bytes, codec: str) -> bytes:
    """ORC compression chunks: a 3-byte little-endian header, (length << 1) | is_original."""
    if codec == "NONE":
        return data
    out, pos = bytearray(), 0
    while pos < len(data):
        header = int.from_bytes(data[pos:pos + 3], "little")
        length, original = header >> 1, header & 1
        chunk = data[pos + 3:pos + 3 + length]
        pos += 3 + length
        if original:
            out += chunk
        elif codec == "ZLIB":
            out += zlib.decompress(chunk, -15)
        else:
            raise ValueError(f"this test helper does not decompress {codec}")
    return bytes(out)


# -- integer RLE v2 --------------------------------------------------------------------------------

_WIDTHS = list(range(1, 25)) + [26, 28, 30, 32, 40, 48, 56, 64]


def _closest_fixed_bits(n: int) -> int:
    if n == 0:
        return 1
    return next(width for width in _WIDTHS if width >= n)


def _unzigzag(value: int) -> int:
    return (value >> 1) ^ -(value & 1)


class _Bits:
    def __init__(self, data: bytes, pos: int) -> None:
        self.data, self.pos = data, pos

    def ints(self, count: int, width: int) -> list[int]:
        """``count`` big-endian bit-packed values of ``width`` bits, starting on a byte boundary."""
        nbytes = (count * width + 7) // 8
        packed = int.from_bytes(self.data[self.pos:self.pos + nbytes], "big")
        self.pos += nbytes
        total = nbytes * 8
        mask = (1 << width) - 1
        return [(packed >> (total - (i + 1) * width)) & mask for i in range(count)]


def decode_rle_v2(data: bytes, signed: bool) -> list[int]:
    """Every value of an integer RLE v2 stream."""
    values: list[int] = []
    pos = 0
    while pos < len(data):
        first = data[pos]
        encoding = first >> 6
        if encoding == 0:  # SHORT_REPEAT
            width = ((first >> 3) & 7) + 1
            count = (first & 7) + 3
            value = int.from_bytes(data[pos + 1:pos + 1 + width], "big")
            pos += 1 + width
            values += [_unzigzag(value) if signed else value] * count
        elif encoding == 1:  # DIRECT
            width = _WIDTHS[(first >> 1) & 0x1F]
            count = (((first & 1) << 8) | data[pos + 1]) + 1
            bits = _Bits(data, pos + 2)
            run = bits.ints(count, width)
            pos = bits.pos
            values += [_unzigzag(v) for v in run] if signed else run
        elif encoding == 2:  # PATCHED_BASE
            width = _WIDTHS[(first >> 1) & 0x1F]
            count = (((first & 1) << 8) | data[pos + 1]) + 1
            third, fourth = data[pos + 2], data[pos + 3]
            base_width = ((third >> 5) & 7) + 1
            patch_width = _WIDTHS[third & 0x1F]
            gap_width = ((fourth >> 5) & 7) + 1
            patch_count = fourth & 0x1F
            pos += 4
            base = int.from_bytes(data[pos:pos + base_width], "big")
            sign_bit = 1 << (base_width * 8 - 1)
            if base & sign_bit:
                base = -(base & ~sign_bit)
            bits = _Bits(data, pos + base_width)
            run = bits.ints(count, width)
            patches = bits.ints(patch_count, _closest_fixed_bits(patch_width + gap_width))
            pos = bits.pos
            index = 0
            for entry in patches:
                index += entry >> patch_width
                run[index] |= (entry & ((1 << patch_width) - 1)) << width
            values += [base + v for v in run]
        else:  # DELTA
            code = (first >> 1) & 0x1F
            width = _WIDTHS[code] if code else 0
            count = (((first & 1) << 8) | data[pos + 1]) + 1
            base, pos = _varint(data, pos + 2)
            if signed:
                base = _unzigzag(base)
            delta, pos = _varint(data, pos)
            delta = _unzigzag(delta)
            run = [base]
            if count > 1:
                run.append(base + delta)
            if width == 0:
                run += [base + delta * i for i in range(2, count)]
            elif count > 2:
                bits = _Bits(data, pos)
                for step in bits.ints(count - 2, width):
                    run.append(run[-1] + step if delta >= 0 else run[-1] - step)
                pos = bits.pos
            values += run
    return values


def decode_booleans(data: bytes, count: int) -> list[bool]:
    """A PRESENT stream: byte RLE, then bits most significant first."""
    raw = bytearray()
    pos = 0
    while pos < len(data):
        header = data[pos]
        if header < 0x80:
            raw += bytes([data[pos + 1]]) * (header + 3)
            pos += 2
        else:
            length = 256 - header
            raw += data[pos + 1:pos + 1 + length]
            pos += 1 + length
    return [bool(raw[i // 8] & (0x80 >> (i % 8))) for i in range(count)]


# -- the file --------------------------------------------------------------------------------------

@dataclass
class StoredTimestamp:
    seconds: int  # as stored in DATA, relative to 2015-01-01 UTC
    serialized_nanos: int  # as stored in SECONDARY (trailing zeros folded into the low 3 bits)

    @property
    def nanos(self) -> int:
        """What Java readers decode the nanoseconds as (Trino's ``decodeNanos``, ORC's ``parseNanos``)."""
        zeros = self.serialized_nanos & 7
        nanos = self.serialized_nanos >> 3
        if zeros:
            nanos *= 10 ** (zeros + 1)
        # Java reads the stream's 64-bit value and narrows it to an int.
        nanos &= 0xFFFFFFFF
        return nanos - (1 << 32) if nanos >= 1 << 31 else nanos

    def trino_millis(self) -> int:
        """Epoch milliseconds as Trino's TimestampColumnReader computes them; refuses like it does."""
        nanos = self.nanos
        if not 0 <= nanos <= 999_999_999:
            raise ValueError(f"Nanos field of timestamp is out of range: {nanos}")
        millis = (self.seconds + ORC_EPOCH_SECONDS) * 1000
        if nanos:
            if millis < 0:
                millis -= 1000  # "adjust for bad ORC rounding logic"
            millis += (nanos + 500_000) // 1_000_000
        return millis


def stored_timestamps(orc: bytes, column: str) -> list[StoredTimestamp | None]:
    """The stored (seconds, nanos) of every row of a top-level timestamp column, None for nulls."""
    ps_length = orc[-1]
    postscript = dict(_fields(orc[-1 - ps_length:-1]))
    codec = _COMPRESSION[postscript.get(2, 0)]
    footer_length = postscript[1]
    footer_end = len(orc) - 1 - ps_length
    footer = _decompress(orc[footer_end - footer_length:footer_end], codec)
    stripes, types = [], []
    for number, value in _fields(footer):
        if number == 3:
            stripes.append(dict(_fields(value)))
        elif number == 4:
            types.append(value)
    root_names = [v.decode() for n, v in _fields(types[0]) if n == 3]
    column_id = root_names.index(column) + 1  # column 0 is the root struct
    kind = dict(_fields(types[column_id]))[1]
    if _TYPE_KINDS[kind] != "timestamp":
        raise ValueError(f"{column} is ORC {_TYPE_KINDS[kind]}, not timestamp")
    result: list[StoredTimestamp | None] = []
    for stripe in stripes:
        offset, index_length, data_length = stripe[1], stripe.get(2, 0), stripe.get(3, 0)
        rows = stripe[5]
        stripe_footer = _decompress(
            orc[offset + index_length + data_length:offset + index_length + data_length + stripe[4]], codec)
        streams, encodings = {}, []
        position = offset
        for number, value in _fields(stripe_footer):
            if number == 1:
                fields = dict(_fields(value))
                stream_kind, stream_column, length = fields.get(1, 0), fields.get(2, 0), fields.get(3, 0)
                if stream_column == column_id:
                    streams[_KINDS[stream_kind]] = _decompress(orc[position:position + length], codec)
                position += length
            elif number == 2:
                encodings.append(dict(_fields(value)).get(1, 0))
            elif number == 3 and value not in (b"GMT", b"UTC"):
                # Readers count the stored seconds from 2015-01-01 in the writer's time zone.
                raise ValueError(f"writer time zone {value!r}: these values are decoded as UTC")
        if encodings[column_id] != 2:
            raise ValueError(f"column encoding {encodings[column_id]} is not DIRECT_V2")
        present = decode_booleans(streams["PRESENT"], rows) if "PRESENT" in streams else [True] * rows
        seconds = decode_rle_v2(streams.get("DATA", b""), signed=True)
        nanos = decode_rle_v2(streams.get("SECONDARY", b""), signed=False)
        values = iter(zip(seconds, nanos, strict=True))
        for is_present in present:
            result.append(StoredTimestamp(*next(values)) if is_present else None)
    return result
