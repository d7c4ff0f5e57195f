"""Athena type names as Arrow types, and the conversions from CSV text that Athena then reads back.

Choices follow what Athena engine v3 reads without surprises: timestamps at millisecond precision
(written as INT64 MILLIS), dates as DATE, decimals as DECIMAL (precision at most 38), integers signed.
"""

from __future__ import annotations

import re
from collections.abc import Callable

import pyarrow as pa
import pyarrow.compute as pc

from transforms.schema.columns import FALSE_WORDS, TRUE_WORDS

_DECIMAL = re.compile(r"^decimal\((\d+),(\d+)\)$")
_SIMPLE: dict[str, pa.DataType] = {
    "string": pa.string(),
    "bigint": pa.int64(),
    "int": pa.int32(),
    "smallint": pa.int16(),
    "tinyint": pa.int8(),
    "double": pa.float64(),
    "float": pa.float32(),
    "date": pa.date32(),
    "timestamp": pa.timestamp("ms"),
    "boolean": pa.bool_(),
}


def arrow_type(athena: str) -> pa.DataType:
    """The Arrow type for a normalised Athena type name (see ``schema.athena_type``)."""
    if athena in _SIMPLE:
        return _SIMPLE[athena]
    match = _DECIMAL.match(athena)
    if match:
        return pa.decimal128(int(match.group(1)), int(match.group(2)))
    raise ValueError(f"no Arrow type for {athena!r}")


# The words, true ones first, made once: one lookup of each value in one set, and no lowering of a
# column that is already lower case (the profile of .parquet had a tenth of its time in booleans).
_BOOLEAN_WORDS = pa.array(TRUE_WORDS + FALSE_WORDS, pa.string())
_FIRST_FALSE = len(TRUE_WORDS)


def _to_boolean(text: pa.Array) -> pa.Array:
    index = pc.index_in(text, value_set=_BOOLEAN_WORDS)  # null where text is null or not a word
    if index.null_count != text.null_count:
        index = pc.index_in(pc.utf8_lower(text), value_set=_BOOLEAN_WORDS)  # "TRUE", "Yes"
        if index.null_count != text.null_count:
            raise pa.ArrowInvalid("not a boolean")
    return pc.less(index, _FIRST_FALSE)  # null stays null


# The fractional digits past milliseconds, in the forms Arrow's ISO 8601 parser accepts.
_FINER_THAN_MS = r"^(\d{4}-\d\d-\d\d[T ]\d\d:\d\d:\d\d\.\d{3})\d+"


def _to_timestamp(text: pa.Array) -> pa.Array:
    """Milliseconds, the precision Athena reads; finer digits are cut, however many there are.

    Cutting the text is flooring on the time line whatever the sign, so 1969-12-31 23:59:59.9995
    stays in 1969 (.999); a cast of the parsed value would round toward zero, into 1970. Parsing at
    nanoseconds instead would refuse everything outside 1677-2262.
    """
    try:
        return pc.cast(text, pa.timestamp("ms"))
    except pa.ArrowInvalid:
        cut = pc.replace_substring_regex(text, pattern=_FINER_THAN_MS, replacement=r"\1")
        return pc.cast(cut, pa.timestamp("ms"))


def converter(athena: str) -> Callable[[pa.Array], pa.Array]:
    """A function from a string array to the typed array; raises ``pa.ArrowInvalid`` on a bad value.

    Empty text is null in every non-string column (CSV has no other way to say null there); in a
    string column a bare empty field is null and a quoted one (``""``) the empty string.
    """
    target = arrow_type(athena)
    if pa.types.is_string(target):
        return lambda text: text
    if pa.types.is_boolean(target):
        convert: Callable[[pa.Array], pa.Array] = _to_boolean
    elif pa.types.is_timestamp(target):
        convert = _to_timestamp
    else:
        def convert(text: pa.Array) -> pa.Array:
            return pc.cast(text, target)

    def typed(text: pa.Array) -> pa.Array:
        try:
            return convert(text)
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
            # Padding ("  12", common in SAS exports) and quoted empty text ("" is null here too):
            # only pay for cleaning a batch that needs it.
            cleaned = pc.utf8_trim_whitespace(text)
            return convert(pc.if_else(pc.equal(cleaned, ""), pa.scalar(None, pa.string()), cleaned))

    return typed
