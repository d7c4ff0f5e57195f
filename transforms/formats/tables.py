"""How Athena reads each output format: its SerDe, input/output classes and table properties.

Each entry of the format registry (``transforms.formats.registry``) carries one of these, so a format's
writer and its table are declared in the same place. Pure data: the catalog renders it as DDL or Glue.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

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


# CI360's CSV is RFC 4180: a quote inside a quoted field is doubled and a backslash is an ordinary
# character. OpenCSVSerDe (and Trino's reader, bug for bug) escapes with a backslash unless told
# otherwise, which drops backslashes and lets \" swallow the rest of a row; an escapeChar of "\"" is
# silently turned back into a backslash. The NUL character is OpenCSV's "no such character".
NO_ESCAPE = "\0"
CSV_TABLE = TableFormat(
    "csv", "org.apache.hadoop.hive.serde2.OpenCSVSerde", _TEXT_INPUT, _TEXT_OUTPUT,
    {"separatorChar": ",", "quoteChar": '"', "escapeChar": NO_ESCAPE}, csv=True,
)
PARQUET_TABLE = TableFormat(
    "parquet", "org.apache.hadoop.hive.ql.io.parquet.serde.ParquetHiveSerDe",
    "org.apache.hadoop.hive.ql.io.parquet.MapredParquetInputFormat",
    "org.apache.hadoop.hive.ql.io.parquet.MapredParquetOutputFormat", stored_as="PARQUET",
)
JSON_TABLE = TableFormat("json", "org.openx.data.jsonserde.JsonSerDe", _TEXT_INPUT, _TEXT_OUTPUT)
ORC_TABLE = TableFormat(
    "orc", "org.apache.hadoop.hive.ql.io.orc.OrcSerde", "org.apache.hadoop.hive.ql.io.orc.OrcInputFormat",
    "org.apache.hadoop.hive.ql.io.orc.OrcOutputFormat", stored_as="ORC",
)
