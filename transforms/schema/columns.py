"""From the CI360 layout to a typed schema that Athena and Glue accept.

Types are kept here as Athena (Hive DDL) type names, the vocabulary users write overrides in; the
Arrow equivalents live in ``arrow_types`` so that a plain CSV run never imports pyarrow.

CI360's ``dataType`` vocabulary is unpublished (CONTRACT.md): every plausible name is mapped, case
and surrounding space ignored, and anything else falls back to string and is reported, never fatal.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field

from transforms.ci360.layout import Layout
from transforms.errors import UnprocessableError, ValidationError

# CI360 (and general SQL) type names -> the Athena type they land as. NUMERIC is ambiguous (it may
# hold identifiers or money): it lands as double unless a column override says bigint or decimal(p,s).
CI360_TYPES: dict[str, str] = {
    **dict.fromkeys(["character", "char", "varchar", "string", "text", "nvarchar", "nchar", "clob",
                     "str", "varchar2"], "string"),
    **dict.fromkeys(["numeric", "numerical", "number", "decimal", "double", "float", "real", "num",
                     "float64", "money", "currency"], "double"),
    **dict.fromkeys(["integer", "int", "bigint", "smallint", "long", "int64", "int32", "tinyint"],
                    "bigint"),
    "date": "date",
    **dict.fromkeys(["datetime", "timestamp", "dttm", "datetime2", "timestamp_ntz", "time_stamp"],
                    "timestamp"),
    **dict.fromkeys(["boolean", "bool", "flag", "bit", "logical"], "boolean"),
}

# How a boolean column's text is read (case ignored), in every format and in the CSV table's view.
TRUE_WORDS = ["true", "t", "yes", "y", "1"]
FALSE_WORDS = ["false", "f", "no", "n", "0"]

_SIMPLE_ATHENA = {"string", "bigint", "int", "smallint", "tinyint", "double", "float", "date",
                  "timestamp", "boolean"}
_ATHENA_ALIASES = {"integer": "int", "real": "float", "varchar": "string", "char": "string",
                   "text": "string", "bool": "boolean", "long": "bigint", "datetime": "timestamp"}
_DECIMAL = re.compile(r"^decimal\s*\(\s*(\d+)\s*(?:,\s*(\d+)\s*)?\)$")
_SIZED_TEXT = re.compile(r"^(?:var)?char\s*\(\s*\d+\s*\)$")
MAX_DECIMAL_PRECISION = 38


def athena_type(text: str) -> str:
    """Normalise a user-written Athena type (``BIGINT``, ``decimal(12, 2)``); refuse the unknown."""
    name = " ".join(text.strip().lower().split())
    name = _ATHENA_ALIASES.get(name, name)
    if name in _SIMPLE_ATHENA:
        return name
    if _SIZED_TEXT.match(name):
        return "string"  # Parquet has no length-limited text; the limit is not ours to enforce
    match = _DECIMAL.match(name)
    if match:
        precision, scale = int(match.group(1)), int(match.group(2) or 0)
        if not 1 <= precision <= MAX_DECIMAL_PRECISION or scale > precision:
            raise ValueError(f"decimal precision must be 1 to {MAX_DECIMAL_PRECISION} and scale at "
                             f"most the precision, not {text!r}")
        return f"decimal({precision},{scale})"
    raise ValueError(f"{text!r} is not an Athena type this connector writes (string, bigint, int, "
                     "smallint, tinyint, double, float, decimal(p,s), date, timestamp, boolean)")


def normalise_name(name: str) -> str:
    """Glue/Athena column names: lowercase ``[a-z0-9_]``, not starting with a digit, never empty."""
    cleaned = re.sub(r"[^a-z0-9_]", "_", name.strip().lower())
    if not cleaned or cleaned.strip("_") == "":
        cleaned = "col" + cleaned
    if cleaned[0].isdigit():
        cleaned = "_" + cleaned
    return cleaned


def _unique(names: list[str]) -> list[str]:
    """Make collisions unique (``a``, ``a_2``, ...) without colliding with a name already present.

    Linear in the number of names however many collide: each base name remembers the last suffix it
    handed out, so thousands of names that normalise alike do not rescan from ``_2`` every time.
    """
    present = set(names)
    taken: set[str] = set()
    next_suffix: dict[str, int] = {}
    result = []
    for name in names:
        candidate = name
        if candidate in taken:
            counter = next_suffix.get(name, 2)
            candidate = f"{name}_{counter}"
            while candidate in taken or candidate in present:
                counter += 1
                candidate = f"{name}_{counter}"
            next_suffix[name] = counter + 1
        taken.add(candidate)
        result.append(candidate)
    return result


@dataclass(frozen=True)
class Field:
    source_name: str  # as the layout names it: the CSV header and overrides use this (or ``name``)
    name: str  # normalised for Glue and Athena: what Parquet, ORC and JSON carry
    type: str  # Athena type name: string, bigint, decimal(12,2), timestamp, ...
    declared: str | None  # the layout's dataType, as sent
    origin: str  # "layout", "override" or "fallback" (an unknown dataType read as string)


@dataclass(frozen=True)
class TypedSchema:
    fields: tuple[Field, ...]
    unknown_types: Mapping[str, str] = field(default_factory=dict)  # column -> unrecognised dataType

    @property
    def names(self) -> list[str]:
        return [f.name for f in self.fields]

    def renamed(self) -> dict[str, str]:
        """Original name -> normalised name, for every column (the result reports it whole)."""
        return {f.source_name: f.name for f in self.fields}

    def types(self) -> dict[str, str]:
        return {f.name: f.type for f in self.fields}


def parse_overrides(text: str, origin: str) -> dict[str, str]:
    """``column_types``: a JSON object, column name -> Athena type. ``origin`` names it in errors."""
    if not text.strip():
        return {}
    try:
        value = json.loads(text)
    except json.JSONDecodeError:
        raise ValidationError(f"{origin} must be a JSON object of column name to Athena type",
                              [{"field": origin}]) from None
    if not isinstance(value, dict) or not all(isinstance(v, str) for v in value.values()):
        raise ValidationError(f"{origin} must be a JSON object of column name to Athena type",
                              [{"field": origin}])
    overrides = {}
    for column, type_text in value.items():
        try:
            overrides[str(column)] = athena_type(type_text)
        except ValueError as exc:
            raise ValidationError(f"{origin}: column {column!r}: {exc}", [{"field": origin}]) from None
    return overrides


def build_schema(layout: Layout, *overrides: Mapping[str, str]) -> TypedSchema:
    """Type every column; later override maps win over earlier ones, and all win over the layout.

    An override may name a column by its layout name or by its normalised name. One naming no
    column is refused: a typo would otherwise silently leave money as a double.
    """
    names = _unique([normalise_name(column.name) for column in layout.columns])
    merged: dict[str, str] = {}
    for mapping in overrides:
        merged.update(mapping)
    known = {c.name for c in layout.columns} | set(names)
    strays = sorted(set(merged) - known)
    if strays:
        raise UnprocessableError(
            f"column_types names columns the layout does not have: {', '.join(strays)}",
            [{"field": "column_types", "unknownColumns": strays}])
    fields, unknown = [], {}
    for column, name in zip(layout.columns, names, strict=True):
        override = merged.get(column.name, merged.get(name))
        declared = column.data_type
        if override:
            type_name, origin = athena_type(override), "override"
        elif declared is None:
            type_name, origin = "string", "layout"  # the CSV layout carries no types
        else:
            mapped = CI360_TYPES.get(declared.strip().lower())
            if mapped is None:
                unknown[column.name] = declared
                type_name, origin = "string", "fallback"
            else:
                type_name, origin = mapped, "layout"
        fields.append(Field(column.name, name, type_name, declared, origin))
    return TypedSchema(tuple(fields), unknown)
