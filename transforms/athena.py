"""Athena tables for what we land: one description per output format, printed as DDL or sent to Glue.

Athena tables are folders, not files, so everything here is about a key's folder and the Hive-style
``name=value`` segments at its end (the partitions). The Glue ``TableInput`` is the single source of
truth: ``create_table_ddl`` renders that same structure, so the DDL a user pastes and the table the
pipeline registers cannot disagree.

Pure on purpose (no boto3, no pyarrow): the CLI and the Lambda both import it cheaply.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from transforms.schema import TypedSchema, normalise_name

_TEXT_INPUT = "org.apache.hadoop.mapred.TextInputFormat"
_TEXT_OUTPUT = "org.apache.hadoop.hive.ql.io.HiveIgnoreKeyTextOutputFormat"


@dataclass(frozen=True)
class TableFormat:
    """How Athena reads one of our output formats: SerDe, input/output classes, table properties."""

    classification: str  # Glue's ``classification`` table property
    serde: str
    input_format: str
    output_format: str
    serde_parameters: Mapping[str, str] = field(default_factory=dict)
    stored_as: str | None = None  # DDL shorthand (``STORED AS PARQUET``) equivalent to the classes
    csv: bool = False  # OpenCSVSerDe: header skipping and its type limits apply


_CSV = TableFormat(
    "csv", "org.apache.hadoop.hive.serde2.OpenCSVSerde", _TEXT_INPUT, _TEXT_OUTPUT,
    {"separatorChar": ",", "quoteChar": '"'}, csv=True,
)
_PARQUET = TableFormat(
    "parquet", "org.apache.hadoop.hive.ql.io.parquet.serde.ParquetHiveSerDe",
    "org.apache.hadoop.hive.ql.io.parquet.MapredParquetInputFormat",
    "org.apache.hadoop.hive.ql.io.parquet.MapredParquetOutputFormat", stored_as="PARQUET",
)
_JSON = TableFormat("json", "org.openx.data.jsonserde.JsonSerDe", _TEXT_INPUT, _TEXT_OUTPUT)
_ORC = TableFormat(
    "orc", "org.apache.hadoop.hive.ql.io.orc.OrcSerde", "org.apache.hadoop.hive.ql.io.orc.OrcInputFormat",
    "org.apache.hadoop.hive.ql.io.orc.OrcOutputFormat", stored_as="ORC",
)

# Output format names (``transforms.formats``) -> table format. Compressed text needs nothing more:
# Athena picks the codec from each object's extension.
TABLE_FORMATS: dict[str, TableFormat] = {
    "csv": _CSV, "csv.gz": _CSV, "csv.bz2": _CSV, "csv.zst": _CSV,
    "parquet": _PARQUET,
    "jsonl": _JSON, "jsonl.gz": _JSON,
    "orc": _ORC,
}
FORMAT_NAMES: tuple[str, ...] = tuple(TABLE_FORMATS)

# OpenCSVSerDe recognises only BOOLEAN, BIGINT, INT and DOUBLE; it reads DATE only as days since
# 1970-01-01 and TIMESTAMP only as epoch milliseconds, while our CSV carries CI360's text as sent.
# Widen what is lossless; declare the rest string and say how to cast it.
_CSV_WIDEN = {"smallint": "int", "tinyint": "int", "float": "double"}
_CSV_AS_STRING = ("date", "timestamp", "boolean", "decimal")
_CSV_NUMERIC = ("bigint", "int", "double")

_IDENTIFIER = re.compile(r"^[a-z0-9_]{1,255}$")
_PARTITION_SEGMENT = re.compile(r"^([A-Za-z_][A-Za-z0-9_]*)=(.+)$")


def table_format(fmt: str) -> TableFormat:
    """The table format for an output format name; refuse the unknown rather than guess a SerDe."""
    try:
        return TABLE_FORMATS[fmt.strip().lower()]
    except KeyError:
        raise ValueError(f"no Athena table format for {fmt!r}; known: {', '.join(FORMAT_NAMES)}") from None


def check_identifier(name: str, what: str) -> str:
    """Athena accepts only lowercase letters, digits and underscore in database and table names."""
    lowered = name.strip().lower()
    if not _IDENTIFIER.match(lowered):
        raise ValueError(f"{what} {name!r} must be letters, digits and underscores only")
    return lowered


def partitions_in_key(key: str) -> list[tuple[str, str]]:
    """Hive-style ``name=value`` folders at the end of the key's folder, outermost first.

    Only the trailing run counts (``a/dt=1/b/x`` has none: its table is the folder ``a/dt=1/b/``),
    and a name repeated further up ends the run, since a table cannot have it twice. Names are
    lowercased (Glue's catalog is); values are kept exactly as in the key.
    """
    segments = key.split("/")[:-1]
    found: list[tuple[str, str]] = []
    for segment in reversed(segments):
        match = _PARTITION_SEGMENT.match(segment)
        if not match or match.group(1).lower() in {name for name, _ in found}:
            break
        found.append((match.group(1).lower(), match.group(2)))
    return list(reversed(found))


def table_location(bucket: str, key: str) -> tuple[str | None, list[tuple[str, str]]]:
    """``(s3://bucket/folder/, partitions)``: the table's folder is the key's, above its partitions.

    None when that folder would be the bucket root: a table there would read every object in the
    bucket.
    """
    partitions = partitions_in_key(key)
    segments = key.split("/")[:-1]
    folder = segments[: len(segments) - len(partitions)]
    if not [segment for segment in folder if segment]:
        return None, partitions
    return f"s3://{bucket}/{'/'.join(folder)}/", partitions


def table_name(location: str) -> str:
    """A table name from the location's last folder (the bucket name at the root), Glue-safe."""
    path = location.removeprefix("s3://").rstrip("/")
    return normalise_name(path.rsplit("/", 1)[-1])[:255]


def _column(name: str, type_name: str, comment: str | None = None) -> dict[str, str]:
    column = {"Name": name, "Type": type_name}
    if comment:
        column["Comment"] = comment
    return column


def _csv_column(name: str, type_name: str) -> dict[str, str]:
    """How a column is declared under OpenCSVSerDe; a Comment says what it holds and how to cast."""
    if type_name in _CSV_WIDEN:
        return _column(name, _CSV_WIDEN[type_name])
    if type_name.startswith(_CSV_AS_STRING):
        return _column(name, "string", f"{type_name} in the data, kept as text for OpenCSVSerDe: "
                                       f"CAST({name} AS {type_name})")
    return _column(name, type_name)


def columns(schema: TypedSchema, fmt: str) -> list[dict[str, str]]:
    """Glue ``Column`` entries for the schema as the format's SerDe can read it."""
    spec = table_format(fmt)
    if spec.csv:
        return [_csv_column(f.name, f.type) for f in schema.fields]
    return [_column(f.name, f.type) for f in schema.fields]


def storage_descriptor(schema: TypedSchema, location: str, fmt: str) -> dict[str, Any]:
    """The Glue ``StorageDescriptor`` for a table (or partition) of this format at ``location``."""
    if not location.startswith("s3://") or not location.endswith("/"):
        raise ValueError(f"a table location must be an s3:// folder ending in '/', not {location!r}")
    spec = table_format(fmt)
    return {
        "Columns": columns(schema, fmt),
        "Location": location,
        "InputFormat": spec.input_format,
        "OutputFormat": spec.output_format,
        "Compressed": fmt.strip().lower().endswith((".gz", ".bz2", ".zst")),
        "SerdeInfo": {"SerializationLibrary": spec.serde, "Parameters": dict(spec.serde_parameters)},
    }


def table_parameters(fmt: str, csv_header: bool) -> dict[str, str]:
    """Table properties this connector owns (anything else on an existing table is left alone)."""
    spec = table_format(fmt)
    parameters = {"EXTERNAL": "TRUE", "classification": spec.classification}
    if spec.csv and csv_header:
        parameters["skip.header.line.count"] = "1"
    return parameters


MANAGED_PARAMETERS = ("EXTERNAL", "classification", "skip.header.line.count")


def table_input(schema: TypedSchema, location: str, fmt: str, *, table: str, csv_header: bool = True,
                partitions: Sequence[str] = ()) -> dict[str, Any]:
    """The Glue ``TableInput``. Partition columns are strings and must not repeat a data column."""
    name = check_identifier(table, "table name")
    keys = [normalise_name(p) for p in partitions]
    if len(set(keys)) != len(keys):
        raise ValueError(f"partition columns repeat a name: {', '.join(keys)}")
    clashes = sorted(set(keys) & set(schema.names))
    if clashes:
        raise ValueError(f"partition column {', '.join(clashes)} is also a data column; Athena refuses "
                         "a table with a column twice")
    return {
        "Name": name,
        "TableType": "EXTERNAL_TABLE",
        "Parameters": table_parameters(fmt, csv_header),
        "PartitionKeys": [_column(key, "string") for key in keys],
        "StorageDescriptor": storage_descriptor(schema, location, fmt),
    }


def partition_input(table: Mapping[str, Any], values: Sequence[str], location: str) -> dict[str, Any]:
    """A Glue ``PartitionInput``: the table's storage at the partition's folder."""
    descriptor = {**table["StorageDescriptor"], "Location": location}
    return {"Values": list(values), "StorageDescriptor": descriptor}


def _quote(name: str) -> str:
    return f"`{name}`"


def _literal(text: str) -> str:
    """A Hive DDL string literal (backslash escapes)."""
    return "'" + text.replace("\\", "\\\\").replace("'", "\\'") + "'"


def _properties(values: Mapping[str, str]) -> str:
    return ",\n".join(f"  {_literal(k)} = {_literal(v)}" for k, v in values.items())


def _csv_notes(cols: Sequence[Mapping[str, str]]) -> list[str]:
    """SQL comments on what OpenCSVSerDe cannot do with this layout."""
    notes = []
    if any(c.get("Comment") for c in cols):
        notes += ["-- OpenCSVSerDe reads DATE only as days since 1970-01-01 and TIMESTAMP only as epoch",
                  "-- milliseconds, and BOOLEAN and DECIMAL are not among the types it recognises. This",
                  "-- CSV holds CI360's text as sent, so those columns are declared string (see each",
                  "-- COMMENT): cast them in queries or in a view."]
    if any(c["Type"] in _CSV_NUMERIC for c in cols):
        notes += ["-- OpenCSVSerDe fails a query (HIVE_BAD_DATA) on an empty field in a bigint, int or",
                  "-- double column; declare such a column string if the audience can leave it empty."]
    return notes


def render_ddl(table: Mapping[str, Any], fmt: str, database: str | None = None) -> str:
    """Print a Glue ``TableInput`` as Athena ``CREATE EXTERNAL TABLE IF NOT EXISTS``."""
    spec = table_format(fmt)
    descriptor = table["StorageDescriptor"]
    name = _quote(table["Name"])
    if database:
        name = f"{_quote(check_identifier(database, 'database name'))}.{name}"

    def declare(column: Mapping[str, str]) -> str:
        comment = f" COMMENT {_literal(column['Comment'])}" if column.get("Comment") else ""
        return f"  {_quote(column['Name'])} {column['Type']}{comment}"

    lines = _csv_notes(descriptor["Columns"]) if spec.csv else []
    lines.append(f"CREATE EXTERNAL TABLE IF NOT EXISTS {name} (")
    lines.append(",\n".join(declare(c) for c in descriptor["Columns"]))
    lines.append(")")
    if table["PartitionKeys"]:
        keys = ", ".join(f"{_quote(k['Name'])} {k['Type']}" for k in table["PartitionKeys"])
        lines.append(f"PARTITIONED BY ({keys})")
    if spec.stored_as:
        lines.append(f"STORED AS {spec.stored_as}")
    else:
        lines.append(f"ROW FORMAT SERDE {_literal(spec.serde)}")
        if spec.serde_parameters:
            lines.append(f"WITH SERDEPROPERTIES (\n{_properties(spec.serde_parameters)}\n)")
        lines.append(f"STORED AS INPUTFORMAT {_literal(spec.input_format)}")
        lines.append(f"OUTPUTFORMAT {_literal(spec.output_format)}")
    lines.append(f"LOCATION {_literal(descriptor['Location'])}")
    parameters = {k: v for k, v in table["Parameters"].items() if k != "EXTERNAL"}  # implied by DDL
    lines.append(f"TBLPROPERTIES (\n{_properties(parameters)}\n);")
    return "\n".join(lines) + "\n"


def create_table_ddl(schema: TypedSchema, location: str, fmt: str, *, table: str,
                     database: str | None = None, csv_header: bool = True,
                     partitions: Sequence[str] = ()) -> str:
    """Athena DDL for the layout's table at ``location`` (an ``s3://`` folder ending in ``/``)."""
    built = table_input(schema, location, fmt, table=table, csv_header=csv_header, partitions=partitions)
    return render_ddl(built, fmt, database)
