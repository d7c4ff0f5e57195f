"""Athena tables for what we land: one description per output format, printed as DDL or sent to Glue.

Athena tables are folders, not files, so everything here is about a key's folder and the Hive-style
``name=value`` segments at its end (the partitions). The Glue ``TableInput`` is the single source of
truth: ``create_table_ddl`` renders that same structure, so the DDL a user pastes and the table the
pipeline registers cannot disagree.

Pure on purpose (no boto3, no pyarrow: the registry loads its writers lazily), so the CLI and the
Lambda both import it cheaply. Each format's table description lives in its registry entry.
"""

from __future__ import annotations

import base64
import json
import re
from collections.abc import Mapping, Sequence
from typing import Any

from transforms.formats.registry import registered_formats
from transforms.formats.tables import TableFormat
from transforms.schema.columns import FALSE_WORDS, TRUE_WORDS, TypedSchema, normalise_name

# Each output format's table comes from its registry entry (``transforms.formats.registry``), where its
# writer is declared. Compressed text needs nothing more: Athena picks the codec from each object's
# extension.
TABLE_FORMATS: dict[str, TableFormat] = {fmt.name: fmt.table for fmt in registered_formats()}
FORMAT_NAMES: tuple[str, ...] = tuple(TABLE_FORMATS)

# A CSV table declares every column string: OpenCSVSerDe fails a whole query (HIVE_BAD_DATA) on one
# empty field in a bigint, int or double column, reads DATE only as days since 1970 and TIMESTAMP only
# as epoch milliseconds, and CI360 sends text. Typed access is a view over the table (``typed_view_sql``).
VIEW_SUFFIX = "_typed"

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
    """Under OpenCSVSerDe every column is text; a Comment names the type the typed view gives it."""
    if type_name == "string":
        return _column(name, "string")
    return _column(name, "string", f"{type_name} in the typed view")


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
    """A Hive DDL string literal (backslash escapes; Hive reads ``\\0`` as the NUL character)."""
    return "'" + text.replace("\\", "\\\\").replace("'", "\\'").replace("\0", "\\0") + "'"


def _properties(values: Mapping[str, str]) -> str:
    return ",\n".join(f"  {_literal(k)} = {_literal(v)}" for k, v in values.items())


_CSV_NOTES = [
    "-- CI360's CSV as sent (RFC 4180: quotes doubled, backslash an ordinary character), read by",
    "-- OpenCSVSerDe with no escape character. Every column is string, so no row can fail a query;",
    "-- query the typed view below for types. In the table an empty field and \"\" both read as ''; in",
    "-- the view both read as NULL, as does a value its column's type cannot hold.",
    "-- Athena's CSV SerDes end a row at every line break, even inside a quoted field: an audience",
    "-- with such fields (the landing result's recordsWithLineBreaks) cannot be queried faithfully",
    "-- as CSV; land it as .parquet. Run each statement on its own.",
]


def _partition_notes(table: Mapping[str, Any], name: str) -> list[str]:
    """How partitions get into the catalog: Athena does not find new partition folders by itself."""
    keys = [k["Name"] for k in table["PartitionKeys"]]
    if not keys:
        return []
    example = ", ".join(f"{k} = '...'" for k in keys)
    folder = "/".join(f"{k}=..." for k in keys)
    return [
        f"-- Partitioned by {', '.join(keys)}: Athena sees a partition only once it is in the catalog.",
        "-- With glue_database set, every landing adds its own. Otherwise, after new folders land:",
        f"--   MSCK REPAIR TABLE {name};  (finds every name=value folder; slow on many)",
        f"--   ALTER TABLE {name} ADD IF NOT EXISTS PARTITION ({example})",
        f"--     LOCATION '{table['StorageDescriptor']['Location']}{folder}/';",
        "-- or partition projection (TBLPROPERTIES 'projection.enabled' = 'true', ...) to skip the catalog.",
    ]


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

    lines = list(_CSV_NOTES) if spec.csv else []
    lines += _partition_notes(table, name)
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
    ddl = render_ddl(built, fmt, database)
    if table_format(fmt).csv:
        ddl += "\n" + create_view_ddl(schema, built["Name"], database=database, partitions=partitions)
    return ddl


# -- the typed view over a CSV table --------------------------------------------------------------

_INTEGER_TEXT = "^-?[0-9]+$"
_DATE_TEXT = "^[0-9]{4}-[0-9]{2}-[0-9]{2}$"
# The forms both Arrow (typed formats) and Trino's CAST read: a date, then a time to the minute or
# second with any fraction, after a space or a T.
_TIMESTAMP_TEXT = r"^[0-9]{4}-[0-9]{2}-[0-9]{2}([ T][0-9]{2}:[0-9]{2}(:[0-9]{2}(\.[0-9]+)?)?)?$"
_TRINO_TYPES = {"string": "varchar", "int": "integer", "float": "real"}


def _identifier(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _sql_string(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def _typed_expression(column: str, type_name: str) -> str:
    """One column of the view: the table's text as the type, NULL where the text is empty or not one.

    Never an error: an empty field, ``Y``/``N`` flags, ``T``-separated timestamps and numbers out of
    range all read (as values or NULL) instead of failing the query. Each type reads what the typed
    formats (Parquet, ORC, JSON) read from the same text.
    """
    quoted = _identifier(column)
    text = f"trim({quoted})"
    trino_type = _TRINO_TYPES.get(type_name, type_name)
    if type_name == "string":
        return f"NULLIF({quoted}, '')"
    if type_name == "boolean":
        true_words = ", ".join(_sql_string(w) for w in TRUE_WORDS)
        false_words = ", ".join(_sql_string(w) for w in FALSE_WORDS)
        return (f"CASE WHEN lower({text}) IN ({true_words}) THEN true "
                f"WHEN lower({text}) IN ({false_words}) THEN false END")
    if type_name == "timestamp":
        # Trino's CAST wants a space before the time and rounds extra digits; cutting the text to
        # milliseconds floors, as the typed formats do.
        return (f"CASE WHEN regexp_like({text}, {_sql_string(_TIMESTAMP_TEXT)}) "
                f"THEN TRY_CAST(substr(replace({text}, 'T', ' '), 1, 23) AS timestamp) END")
    if type_name in ("bigint", "int", "smallint", "tinyint", "date"):
        # Only the digits Arrow reads: Trino's CAST (and DuckDB's) would take more, or round.
        guard = _DATE_TEXT if type_name == "date" else _INTEGER_TEXT
        return (f"CASE WHEN regexp_like({text}, {_sql_string(guard)}) "
                f"THEN TRY_CAST({text} AS {trino_type}) END")
    return f"TRY_CAST(NULLIF({text}, '') AS {trino_type})"  # double, float, decimal(p,s)


def view_name(table: str) -> str:
    return check_identifier(table[: 255 - len(VIEW_SUFFIX)] + VIEW_SUFFIX, "view name")


def typed_view_sql(schema: TypedSchema, table: str, *, database: str | None = None,
                   partitions: Sequence[str] = ()) -> str:
    """The view's ``SELECT`` (Trino SQL, as Athena runs it): typed columns, then the partitions."""
    columns = [f"  {_typed_expression(f.name, f.type)} AS {_identifier(f.name)}" for f in schema.fields]
    columns += [f"  {_identifier(normalise_name(p))}" for p in partitions]
    source = _identifier(check_identifier(table, "table name"))
    if database:
        source = f"{_identifier(check_identifier(database, 'database name'))}.{source}"
    return "SELECT\n" + ",\n".join(columns) + f"\nFROM {source}"


def create_view_ddl(schema: TypedSchema, table: str, *, database: str | None = None,
                    partitions: Sequence[str] = ()) -> str:
    """Athena ``CREATE OR REPLACE VIEW <table>_typed`` over a CSV table."""
    name = _identifier(view_name(table))
    if database:
        name = f"{_identifier(check_identifier(database, 'database name'))}.{name}"
    select = typed_view_sql(schema, table, database=database, partitions=partitions)
    return f"CREATE OR REPLACE VIEW {name} AS\n{select};\n"


def view_input(schema: TypedSchema, table: str, database: str, *, partitions: Sequence[str] = ()
               ) -> dict[str, Any]:
    """The typed view as a Glue ``TableInput``, stored the way Athena stores the views it creates.

    Athena (Trino) recognises a view by TableType VIRTUAL_VIEW and the parameters presto_view=true
    and comment="Presto View", and reads its definition from ViewOriginalText: ``/* Presto View: ``,
    base64 of a JSON document (originalSql, catalog, schema, columns with Trino types), `` */``. The
    columns must be exactly the types the SQL yields, or Athena calls the view stale.
    """
    database = check_identifier(database, "database name")
    keys = [normalise_name(p) for p in partitions]
    hive = [(f.name, f.type) for f in schema.fields] + [(k, "string") for k in keys]
    definition = {
        "originalSql": typed_view_sql(schema, table, database=database, partitions=partitions),
        "catalog": "awsdatacatalog",
        "schema": database,
        "columns": [{"name": n, "type": _TRINO_TYPES.get(t, t)} for n, t in hive],
    }
    encoded = base64.b64encode(json.dumps(definition).encode("utf-8")).decode("ascii")
    return {
        "Name": view_name(table),
        "TableType": "VIRTUAL_VIEW",
        "Parameters": {"presto_view": "true", "comment": "Presto View"},
        "ViewOriginalText": f"/* Presto View: {encoded} */",
        "ViewExpandedText": "/* Presto View */",
        "PartitionKeys": [],
        "StorageDescriptor": {"Columns": [_column(n, t) for n, t in hive], "SerdeInfo": {}},
    }
